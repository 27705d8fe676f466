"""Benchmark: requests per second and latency of 1-row predicts over loopback HTTP.

The serving numbers, side by side in one run, on
the digits 64-64-10 MLP of `bench_predict.py`:

- `python -m models.serve` running the model with ONNX Runtime (through
  `models.zoo`, as it does when the export has `model.onnx`) and with the
  SavedModel's signature (the fallback, on a copy of the export without the
  ONNX file), each with and without joining concurrent requests into one model
  call (`--batching on|off`; the default, `auto`, batches SavedModel-run models only);
- a naive server, written here for comparison only: the standard library's
  `ThreadingHTTPServer` calling `keras.Model.predict` once per request;
- 1 and 8 concurrent clients, each its own process with one keep-alive
  connection, sending `{"instances": [row]}` back to back for `--seconds`;
- in-process `zoo.load(...).predict(row)` calls per second, for scale;
- the same ONNX-run server over TensorFlow Serving's gRPC API (`--grpc-port`),
  each client the official `PredictionServiceStub` with one channel;
- start-up time (process start to the "Serving" line) and resident memory of
  the REST-only server and of the one with `--grpc-port`, which imports
  TensorFlow for the serving protos (median of 3 starts, ONNX exports).

Every answer is checked against `zoo`'s prediction for the same row. The
servers run with per-request logging off (`--quiet`); one variant with it on
shows what the log line costs.

Run by hand, not in CI:

    python scripts/bench_serve.py
    python scripts/bench_serve.py --seconds 5 --json reports/bench_serve.json
    python scripts/bench_serve.py --only "ONNX (default" --only gRPC   # a subset of the servers

It prints a table and writes JSON (default `reports/bench_serve.json`, an ignored folder).
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def naive_server(model_dir, port):
    """The comparison server: one `model.predict` per request, TF-Serving-shaped answers."""
    import http.server

    import keras

    from models import zoo

    folder = zoo.resolve("digits-mlp", model_dir=model_dir)
    meta = json.loads((folder / "metadata.json").read_text())
    model = keras.models.load_model(folder / "model.keras")

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # as in models.serve: no delayed-ACK stall per answer

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            probabilities = model.predict(np.asarray(body["instances"], np.float32), verbose=0)
            ids = probabilities.argmax(axis=1)
            answer = json.dumps({"predictions": [
                {"class_ids": int(i), "labels": meta["class_names"][i], "probabilities": p.tolist()}
                for i, p in zip(ids, probabilities)
            ]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    print("ready", flush=True)
    server.serve_forever()


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


SERVERS = {  # name: (export root, extra arguments of `python -m models.serve`)
    "ours, ONNX (default: no batching)": ("onnx", ["--quiet"]),
    "ours, ONNX, gRPC": ("onnx", ["--quiet", "--grpc-port"]),
    "ours, ONNX, batching on": ("onnx", ["--quiet", "--batching", "on"]),
    "ours, ONNX, logging on": ("onnx", []),
    "ours, SavedModel (default: batching)": ("savedmodel", ["--quiet"]),
    "ours, SavedModel, batching off": ("savedmodel", ["--quiet", "--batching", "off"]),
    "naive (model.predict per request)": ("onnx", None),
}


def start_server(kind, roots, log_path):
    """Starts a server process; returns `(process, port)` once it answers (the gRPC port for gRPC)."""
    port = _free_port()
    root, extra = SERVERS[kind]
    model_dir = roots[root]
    if extra and extra[-1] == "--grpc-port":
        extra = [*extra, str(_free_port())]
        port = int(extra[-1])  # the REST port binds first; wait for (and load-test) the gRPC one
    if extra is None:
        command = [sys.executable, __file__, "--naive-server", str(model_dir), "--port", str(port)]
    else:
        rest_port = _free_port() if "--grpc-port" in extra else port
        command = [sys.executable, "-m", "models.serve", "--model-dir", str(model_dir), "--port", str(rest_port)]
        command += extra
    log = open(log_path, "w")
    process = subprocess.Popen(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:  # both servers bind their port once the model is loaded
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
            return process, port
        except OSError:
            if process.poll() is not None:
                raise RuntimeError(f"{kind} server exited: see {log_path}") from None
            time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"{kind} server did not start within 180 s")


def client(port, rows, expected, seconds, ready, go, out):
    """One client process: 1-row predicts back to back; puts `(latencies, wrong)` on `out`."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    bodies = [json.dumps({"instances": [row]}).encode() for row in rows]
    headers = {"Content-Type": "application/json"}
    latencies, wrong, i = [], 0, 0
    ready.put(True)
    start_at = go.get()
    while time.time() < start_at:
        time.sleep(0.001)
    stop = start_at + seconds
    while time.time() < stop:
        k = i % len(bodies)
        started = time.perf_counter()
        connection.request("POST", "/v1/models/digits-mlp:predict", body=bodies[k], headers=headers)
        response = connection.getresponse()
        answer = json.loads(response.read())
        latencies.append(time.perf_counter() - started)
        if response.status != 200 or answer["predictions"][0]["labels"] != expected[k]:
            wrong += 1
        i += 1
    out.put((latencies, wrong))


def grpc_client(port, rows, expected, seconds, ready, go, out):
    """One gRPC client process (`PredictionServiceStub`, one channel); puts `(latencies, wrong)` on `out`."""
    import grpc
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    stub = prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(f"127.0.0.1:{port}"))
    requests = []
    for row in rows:
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "digits-mlp"
        tensor = request.inputs["features"]
        tensor.dtype = 1  # DT_FLOAT
        tensor.tensor_shape.dim.add(size=1)
        tensor.tensor_shape.dim.add(size=len(row))
        tensor.float_val.extend(row)
        requests.append(request)
    stub.Predict(requests[0], timeout=60)  # connected before the clock starts
    latencies, wrong, i = [], 0, 0
    ready.put(True)
    start_at = go.get()
    while time.time() < start_at:
        time.sleep(0.001)
    stop = start_at + seconds
    while time.time() < stop:
        k = i % len(requests)
        started = time.perf_counter()
        response = stub.Predict(requests[k], timeout=60)
        latencies.append(time.perf_counter() - started)
        if response.outputs["labels"].string_val[0].decode() != expected[k]:
            wrong += 1
        i += 1
    out.put((latencies, wrong))


def load_test(port, rows, expected, clients, seconds, target=client):
    """Runs `clients` client processes for `seconds`; returns requests/s and latency percentiles."""
    context = multiprocessing.get_context("spawn")
    out, ready, go = context.Queue(), context.Queue(), context.Queue()
    processes = [context.Process(target=target, args=(port, rows, expected, seconds, ready, go, out))
                 for _ in range(clients)]
    for p in processes:
        p.start()
    for _ in processes:  # every process started and connected
        ready.get(timeout=300)
    start_at = time.time() + 0.2
    for _ in processes:
        go.put(start_at)
    results = [out.get(timeout=seconds + 120) for _ in processes]
    for p in processes:
        p.join(timeout=30)
    latencies = np.concatenate([r[0] for r in results])
    return {
        "clients": clients, "requests": int(len(latencies)), "wrong": int(sum(r[1] for r in results)),
        "requests_per_second": len(latencies) / seconds,
        "p50_ms": float(np.percentile(latencies, 50) * 1e3),
        "p99_ms": float(np.percentile(latencies, 99) * 1e3),
    }


def in_process(model_dir, rows, seconds):
    """In-process `zoo.predict` of one row (a list), calls per second and latency."""
    from models import zoo

    model = zoo.load("digits-mlp", model_dir=model_dir)
    latencies = []
    stop = time.perf_counter() + seconds
    i = 0
    while time.perf_counter() < stop:
        started = time.perf_counter()
        model.predict([rows[i % len(rows)]])
        latencies.append(time.perf_counter() - started)
        i += 1
    latencies = np.asarray(latencies)
    return {"clients": 1, "requests": len(latencies), "wrong": 0,
            "requests_per_second": len(latencies) / latencies.sum(),
            "p50_ms": float(np.percentile(latencies, 50) * 1e3),
            "p99_ms": float(np.percentile(latencies, 99) * 1e3)}


def start_up(model_dir, extra, runs=3):
    """Median seconds from process start to the "Serving" line, and resident memory then (MiB)."""
    seconds, memory = [], []
    for _ in range(runs):
        started = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "-m", "models.serve", "--model-dir", str(model_dir), "--port", "0", *extra],
            cwd=REPO, stderr=subprocess.PIPE, text=True,
        )
        try:
            while "Serving" not in (line := process.stderr.readline()):
                if not line:
                    raise RuntimeError(f"the server ({extra}) exited before serving")
            seconds.append(time.perf_counter() - started)
            status = Path(f"/proc/{process.pid}/status").read_text()
            memory.append(int(status.split("VmRSS:")[1].split()[0]) / 1024)
        finally:
            process.terminate()
            process.wait(timeout=30)
    return {"start_seconds": statistics.median(seconds), "rss_mib": statistics.median(memory)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=4.0, help="seconds per measurement; default 4")
    parser.add_argument("--naive-seconds", type=float, default=6.0,
                        help="seconds per naive-server measurement; default 6")
    parser.add_argument("--json", type=Path, default=REPO / "reports" / "bench_serve.json")
    parser.add_argument("--only", action="append", metavar="TEXT",
                        help="run only the servers whose name contains TEXT (repeatable); default: all")
    parser.add_argument("--naive-server", metavar="MODEL_DIR", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.naive_server:
        return naive_server(args.naive_server, args.port)

    from bench_predict import make_export

    from models import zoo

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        folder, x_test = make_export(Path(tmp))
        model_dir = folder.parent.parent
        rows = np.round(x_test[:64], 3).tolist()
        expected = list(zoo.load("digits-mlp", model_dir=model_dir).predict(rows))
        results.append({"server": "in-process zoo.predict (no HTTP)",
                        **in_process(model_dir, rows, args.seconds)})
        without_onnx = Path(tmp) / "savedmodel-only"
        shutil.copytree(model_dir, without_onnx)
        for onnx_file in without_onnx.glob("*/*/model.onnx"):
            onnx_file.unlink()
        roots = {"onnx": model_dir, "savedmodel": without_onnx}
        startup = {name: start_up(model_dir, extra) for name, extra in
                   (("REST only", []), ("REST + --grpc-port", ["--grpc-port", str(_free_port())]))}
        kinds = [k for k in SERVERS if not args.only or any(t in k for t in args.only)]
        if not any(k.startswith("naive") for k in kinds):
            kinds.append("naive (model.predict per request)")  # the ratios' reference
        for i, kind in enumerate(kinds):
            process, port = start_server(kind, roots, Path(tmp) / f"server-{i}.log")
            try:
                for clients in (1, 8):
                    seconds = args.naive_seconds if kind.startswith("naive") else args.seconds
                    target = grpc_client if "gRPC" in kind else client
                    r = load_test(port, rows, expected, clients, seconds, target)
                    results.append({"server": kind, **r})
                    print(f"  {kind:36s} {clients} client(s): {r['requests_per_second']:8.0f} req/s", flush=True)
            finally:
                process.terminate()
                process.wait(timeout=30)

    naive = {r["clients"]: r["requests_per_second"] for r in results if r["server"].startswith("naive")}
    print(f"\n1-row predicts over loopback ({platform.node()}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f})")
    print(f"{'server':36s} {'clients':>7s} {'req/s':>9s} {'p50 ms':>8s} {'p99 ms':>8s} {'x naive':>8s} {'wrong':>6s}")
    for r in results:
        ratio = r["requests_per_second"] / naive[r["clients"]]
        r["ratio_to_naive"] = ratio
        print(f"{r['server']:36s} {r['clients']:7d} {r['requests_per_second']:9.0f} {r['p50_ms']:8.2f} "
              f"{r['p99_ms']:8.2f} {ratio:8.1f} {r['wrong']:6d}")
    print(f"\n{'start-up (ONNX exports)':36s} {'seconds':>9s} {'RSS MiB':>9s}")
    for name, r in startup.items():
        print(f"{name:36s} {r['start_seconds']:9.2f} {r['rss_mib']:9.0f}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({
        "machine": {"node": platform.node(), "cpus": os.cpu_count(), "load_average": os.getloadavg(),
                    "python": platform.python_version()},
        "model": "digits 64-64-10 MLP", "seconds": args.seconds, "results": results, "start_up": startup,
    }, indent=2) + "\n")
    print(f"JSON: {args.json}")
    return 0 if not any(r["wrong"] for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
