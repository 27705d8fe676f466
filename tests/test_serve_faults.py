"""The server under faults: a damaged version, a version deleted while served, and a soak.

A damaged version answers JSON errors while every other version and model is served, and is
served again once repaired; a deleted version is a 404 at once and the newest is what is
newest now; 32 concurrent clients mixing valid, malformed and unknown requests get 200 with
the zoo's numbers or 4xx JSON, never a 5xx or a dropped connection, and the server's memory
stays flat.
"""

import json
import os
import random
import shutil
import threading
import time

import numpy as np
import pytest

from models import zoo
from serving_fixtures import (  # noqa: F401 (fixtures)
    IRIS_ROWS,
    Client,
    client,
    exports,
    model_dir,
    running,
    server,
)


def _second_version(model_dir):
    source = model_dir / "multiclass-softmax" / "1"
    target = model_dir / "multiclass-softmax" / "2"
    shutil.copytree(source, target)
    meta = json.loads((target / "metadata.json").read_text())
    meta["version"] = 2
    (target / "metadata.json").write_text(json.dumps(meta))
    return target


def test_a_damaged_version_is_a_json_error_and_is_served_again_once_repaired(model_dir):
    second = _second_version(model_dir)
    saved = (second / "model.onnx").read_bytes(), (second / "saved_model.pb").read_bytes()
    (second / "model.onnx").write_bytes(b"")  # zero-byte ONNX and random-byte SavedModel
    (second / "saved_model.pb").write_bytes(os.urandom(4096))
    with running(model_dir, preload=False) as httpd:
        c = Client(httpd.server_address[1])
        status, answer = c.post("/v1/models/multiclass-softmax/versions/2:predict",
                                {"instances": IRIS_ROWS})
        assert status == 404 and "cannot be loaded" in answer["error"]
        assert "model.onnx" in answer["error"] or "saved_model.pb" in answer["error"]
        status, answer = c.post("/v1/models/multiclass-softmax/versions/1:predict",
                                {"instances": IRIS_ROWS})
        assert status == 200 and len(answer["predictions"]) == 3
        status, answer = c.post("/v1/models/relu-regression:predict", {"instances": [[0.0] * 10]})
        assert status == 200
        status, answer = c.get("/v1/models/multiclass-softmax")
        states = {s["version"]: s["state"] for s in answer["model_version_status"]}
        assert states == {"2": "END", "1": "AVAILABLE"}
        (second / "model.onnx").write_bytes(saved[0])  # repaired
        (second / "saved_model.pb").write_bytes(saved[1])
        status, answer = c.post("/v1/models/multiclass-softmax/versions/2:predict",
                                {"instances": IRIS_ROWS})
        assert status == 200, answer
        expected = zoo.load(second).predict(IRIS_ROWS)
        assert [p["labels"] for p in answer["predictions"]] == list(expected)


def test_a_version_deleted_while_served_is_a_404_and_the_newest_moves_back(model_dir):
    second = _second_version(model_dir)
    with running(model_dir) as httpd:
        c = Client(httpd.server_address[1])
        status, _ = c.post("/v1/models/multiclass-softmax/versions/2:predict", {"instances": IRIS_ROWS})
        assert status == 200
        status, answer = c.get("/v1/models/multiclass-softmax")
        assert [s["version"] for s in answer["model_version_status"]] == ["2", "1"]
        shutil.rmtree(second)
        status, answer = c.post("/v1/models/multiclass-softmax/versions/2:predict",
                                {"instances": IRIS_ROWS})
        assert status == 404 and "Servable not found" in answer["error"]
        status, answer = c.get("/v1/models/multiclass-softmax")
        assert [s["version"] for s in answer["model_version_status"]] == ["1"]
        status, answer = c.post("/v1/models/multiclass-softmax:predict", {"instances": IRIS_ROWS})
        assert status == 200 and len(answer["predictions"]) == 3


def _rss_kb():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


def soak(model_dir, seconds, clients=32):
    """`clients` threads for `seconds` against one server; returns what they saw."""
    model = zoo.load("multiclass-softmax", model_dir=model_dir)
    rng = np.random.default_rng(0)
    pool = rng.normal([5.8, 3.0, 3.8, 1.2], [0.8, 0.4, 1.7, 0.7], size=(256, 4)).round(2)
    expected = model.predict_proba(pool)
    counts = {"valid": 0, "invalid": 0, "wrong": [], "server_errors": [], "dropped": []}
    latencies = []
    lock = threading.Lock()

    def one(c, rnd):
        kind = rnd.random()
        if kind < 0.6:  # a valid predict, row or columnar, 1-256 rows
            start = rnd.randrange(0, 255)
            rows = pool[start:start + rnd.randint(1, 256 - start)].tolist()
            if rnd.random() < 0.5:
                status, answer = c.post("/v1/models/multiclass-softmax:predict", {"instances": rows})
                got = [p["probabilities"] for p in answer.get("predictions", [])]
            else:
                status, answer = c.post("/v1/models/multiclass-softmax:predict", {"inputs": rows})
                got = answer.get("outputs", {}).get("probabilities", [])
            ok = status == 200 and np.allclose(got, expected[start:start + len(rows)], atol=1e-5)
            return "valid", status, ok
        if kind < 0.75:
            status, _ = c.request("POST", "/v1/models/multiclass-softmax:predict", b"{not json",
                                  {"Content-Type": "application/json"})
        elif kind < 0.85:
            status, _ = c.post("/v1/models/no-such-model:predict", {"instances": [[1, 2, 3, 4]]})
        elif kind < 0.95:
            status, _ = c.post("/v1/models/multiclass-softmax:predict", {"instances": [[1, "x"]]})
        else:
            status, _ = c.get("/v1/models/multiclass-softmax/metadata")
            return "valid", status, status == 200
        return "invalid", status, 400 <= status < 500

    def work(seed, stop):
        rnd = random.Random(seed)
        c = Client(port)
        while not stop.is_set():
            started = time.perf_counter()
            try:
                kind, status, ok = one(c, rnd)
            except Exception as error:  # a dropped or reset connection
                with lock:
                    counts["dropped"].append(repr(error))
                c = Client(port)
                continue
            with lock:
                latencies.append(time.perf_counter() - started)
                counts[kind] += 1
                if status >= 500:
                    counts["server_errors"].append(status)
                elif not ok:
                    counts["wrong"].append((kind, status))

    with running(model_dir) as httpd:
        port = httpd.server_address[1]
        warm = threading.Event()
        threads = [threading.Thread(target=work, args=(i, warm)) for i in range(clients)]
        for t in threads:
            t.start()
        time.sleep(min(3.0, seconds / 4))  # warm-up: every path loaded and allocated
        warm.set()
        for t in threads:
            t.join(timeout=30)
        before = _rss_kb()
        stop = threading.Event()
        threads = [threading.Thread(target=work, args=(100 + i, stop)) for i in range(clients)]
        started = time.perf_counter()
        for t in threads:
            t.start()
        time.sleep(seconds)
        stop.set()
        for t in threads:
            t.join(timeout=30)
        elapsed = time.perf_counter() - started
        after = _rss_kb()
    latencies.sort()
    return {**counts, "seconds": elapsed, "rss_before_kb": before, "rss_after_kb": after,
            "requests": len(latencies), "p50_ms": 1000 * latencies[len(latencies) // 2],
            "p99_ms": 1000 * latencies[int(len(latencies) * 0.99)]}


def _check(result):
    assert result["server_errors"] == [] and result["dropped"] == [], result
    assert result["wrong"] == [], result["wrong"][:5]
    assert result["valid"] > 100 and result["invalid"] > 20
    assert result["rss_after_kb"] <= result["rss_before_kb"] * 1.10, result


def test_a_ten_second_soak_of_32_clients(model_dir):
    _check(soak(model_dir, seconds=10))


@pytest.mark.slow
def test_a_sixty_second_soak_of_32_clients(model_dir):
    result = soak(model_dir, seconds=60)
    print(json.dumps({k: v for k, v in result.items() if not isinstance(v, list)}))
    _check(result)
