"""What the `models.serve` tests share: the exports they serve, a keep-alive client, raw sockets.

Imported by `test_serve*.py` (`from serving_fixtures import ...`): the fixtures
are defined once, and a test module that imports them can use them.
"""

import http.client
import json
import shutil
import socket

import pytest

from models import serve, zoo

IRIS_ROWS = [[5.1, 3.5, 1.4, 0.2], [6.3, 2.9, 5.6, 1.8], [5.9, 3.0, 4.2, 1.5]]
MAX_BODY = 64 * 1024
TIMEOUT = 20


@pytest.fixture(scope="session")
def exports(tmp_path_factory):
    """`multiclass-softmax/1` and `relu-regression/1`, trained with `--epochs 2` (shared with test_zoo)."""
    from recipes.run import main

    root = tmp_path_factory.getbasetemp() / "zoo-exports"
    for recipe in ("multiclass-softmax", "relu-regression"):
        if recipe not in zoo.names(root):
            assert main([recipe, "--epochs", "2", "--output-dir", str(root)]) == 0
    return root


@pytest.fixture
def model_dir(exports, tmp_path):
    """A copy of the exports this test may change."""
    target = tmp_path / "models"
    shutil.copytree(exports, target)
    return target


class Client:
    """A keep-alive HTTP client for one server; answers are `(status, json)`."""

    def __init__(self, port):
        self.port = port
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)

    def request(self, method, path, body=None, headers=None):
        data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
        self.connection.request(method, path, body=data, headers=headers or {})
        response = self.connection.getresponse()
        raw = response.read()
        if response.getheader("Connection", "").lower() == "close":
            self.connection.close()
        assert response.getheader("Content-Type") == "application/json", raw
        return response.status, json.loads(raw)

    def get(self, path):
        return self.request("GET", path)

    def post(self, path, body):
        return self.request("POST", path, body, {"Content-Type": "application/json"})


def running(model_dir, **options):
    """A server on a free port, serving in a thread; always shut down."""
    return serve.running(model_dir, max_body_bytes=MAX_BODY, timeout=TIMEOUT, **options)


@pytest.fixture
def server(model_dir):
    with running(model_dir) as httpd:
        yield httpd


@pytest.fixture
def client(server):
    c = Client(server.server_address[1])
    yield c
    c.connection.close()


def raw(port, data):
    """Sends raw bytes, reads to the end; returns `(status line, headers text, body bytes)`."""
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    return lines[0], "\r\n".join(lines[1:]), body


def available(version):
    return {"version": str(version), "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
