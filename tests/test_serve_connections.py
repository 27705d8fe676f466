"""Connections cannot exhaust `models.serve`: 1,000 half-sent requests, real sockets, one process."""

import json
import socket
import threading
import time

from serving_fixtures import IRIS_ROWS, Client, exports, model_dir, running  # noqa: F401 (fixtures)

HALF_SENT = 1000
WORKERS = 4
TIMEOUT_S = 3.0


def _half_sent(port):
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(b"POST /v1/models/multiclass-softmax:predict HTTP/1.1\r\nHost: x\r\n"
                 b"Content-Length: 100\r\n\r\n{\"instances\": [[5.1,")  # 20 of the 100 bytes promised
    return sock


def _read_all(sock):
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def test_a_thousand_half_sent_requests_hold_no_thread_and_are_closed_after_the_timeout(model_dir):
    with running(model_dir, workers=WORKERS, request_timeout=TIMEOUT_S) as server:
        port = server.server_address[1]
        client = Client(port)
        assert client.get("/v1/models/multiclass-softmax")[0] == 200
        threads_before = threading.active_count()
        opened = time.monotonic()
        idle = [_half_sent(port) for _ in range(HALF_SENT)]
        while server.connections < HALF_SENT + 1 and time.monotonic() - opened < 20:
            time.sleep(0.01)
        assert server.connections == HALF_SENT + 1  # every one accepted and held open
        accepted = time.monotonic() - opened

        started = time.perf_counter()
        fresh = Client(port)  # a new connection, answered while the thousand wait
        status, answer = fresh.post("/v1/models/multiclass-softmax:predict", {"instances": IRIS_ROWS})
        elapsed = time.perf_counter() - started
        assert status == 200 and len(answer["predictions"]) == 3
        assert elapsed < 1.0, f"a normal request took {elapsed:.2f} s beside {HALF_SENT} half-sent ones"
        if time.monotonic() - opened < TIMEOUT_S:  # (on a loaded machine opening them may take longer)
            assert server.connections == HALF_SENT + 2  # they are all still open meanwhile
        assert threading.active_count() <= threads_before + WORKERS  # bounded: no thread per connection

        answers = [_read_all(sock) for sock in idle]  # each is answered 408, then closed
        waited = time.monotonic() - opened
        for sock in idle:
            sock.close()
        assert TIMEOUT_S - 0.1 <= waited < accepted + TIMEOUT_S + 5
        assert all(a.startswith(b"HTTP/1.1 408 ") for a in answers), answers[0][:80]
        body = answers[0].partition(b"\r\n\r\n")[2]
        assert "did not arrive whole within 3 s" in json.loads(body)["error"]
        deadline = time.monotonic() + 5
        while server.connections > 0 and time.monotonic() < deadline:  # idle keep-alives time out too
            time.sleep(0.01)
        assert server.connections == 0
        assert Client(port).get("/v1/models/multiclass-softmax")[0] == 200  # and it serves on


def test_a_connection_that_sends_nothing_is_closed_after_the_timeout(model_dir):
    with running(model_dir, request_timeout=0.5) as server:
        with socket.create_connection(("127.0.0.1", server.server_address[1]), timeout=10) as sock:
            started = time.monotonic()
            assert _read_all(sock) == b""  # closed without an answer: no request to answer
            assert 0.4 <= time.monotonic() - started < 5
