"""A TensorFlow-Serving-compatible REST server for every model under a folder.

    python -m models.serve [--model-dir saved_models] [--host 127.0.0.1] [--port 8501]

It speaks TensorFlow Serving's REST API, so a client written against it works
unchanged against `tensorflow/serving` serving the same folder:

- `GET /v1/models/NAME[/versions/V]`: `{"model_version_status": [...]}`;
- `GET /v1/models/NAME[/versions/V]/metadata`: `{"model_spec": ..., "metadata":
  {"signature_def": ...}}`;
- `POST /v1/models/NAME[/versions/V]:predict` with `{"instances": [...]}` (row
  format, answered with `{"predictions": [...]}`) or `{"inputs": ...}`
  (columnar, answered with `{"outputs": ...}`); `signature_name` may be
  `serving_default` or left out.

With one named output (regression: `predictions`) a row-format answer is a
plain list of values; with several (classification: `probabilities`,
`class_ids`, `labels`) it is one object per row, as TensorFlow Serving does.
Besides TensorFlow Serving's instance forms (a list of feature values, or
`{"features": [...]}`), an instance may be a `{feature_name: value}` object,
and `inputs` may be `{feature_name: [values...]}` columns: both are checked by
`models.zoo`, which also runs the model (ONNX Runtime when the export has
`model.onnx`, else the SavedModel's signature).

Errors are `{"error": "message"}` with 400 (bad request), 404 (no such model,
version or path), 405, 411 and 413 (body over `--max-body-bytes`); the server
never answers with a traceback and stays up. The newest version is served by
default; a version folder added while the server runs is used by the next
request (folders are listed per request, and a version folder appears whole,
see `models.export.layout`). For a model run by the SavedModel, requests that arrive
while the model is busy are run together in one call (`Batcher`); an ONNX call
is cheaper than handing a request to a batching thread, so those are run as
they come (`--batching on|off` overrides; `scripts/bench_serve.py` measures
both). One log line per request; SIGINT and SIGTERM stop it cleanly.

Why the standard library's `ThreadingHTTPServer`: one request costs well under
a millisecond of model time, so the server's work is parsing HTTP and JSON,
which a thread per connection does at thousands of requests per second on two
cores (see `scripts/bench_serve.py`); it adds no dependency, and keeps the
body-size check before the body is read. It is not hardened for the open
internet (it binds 127.0.0.1 by default); more traffic than one process takes
is `tensorflow/serving`'s job, on the same folder.
"""

from __future__ import annotations

import argparse
import contextlib
import http.server
import json
import logging
import queue
import re
import signal
import sys
import threading
import time
from pathlib import Path

import numpy as np

from models import zoo
from models.export.layout import versions

MAX_BODY_BYTES = 8 * 1024 * 1024
"""The default request-body limit: about 100,000 rows of 30 features."""

DRAIN_BYTES = 64 * 1024 * 1024
"""A too-large body up to this size is read and dropped before the 413, so the client sees it."""

BATCHING = ("auto", "on", "off")

MAX_BATCH_ROWS = 4096
"""A batch takes waiting requests until it holds this many rows."""

log = logging.getLogger("models.serve")

_PATH = re.compile(
    r"^/v1/models/(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)"
    r"(?:/versions/(?P<version>[0-9]+))?(?P<verb>/metadata|:predict|:classify|:regress)?/?$"
)


class HTTPError(Exception):
    """A request answered with `{"error": message}` and an HTTP status."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message


class Batcher:
    """Runs a model on requests as they come, joining the ones that wait into one call.

    One thread calls the model. While it is busy, requests queue up; its next
    call takes all of them (up to `max_rows` rows), so under load many
    requests share one call, and a lone request does not wait for company.

    Args:
        run: `callable(feed) -> {name: array}`, e.g. `zoo.Model.run`; a feed is
            `{input_name: array}` (or one array), one row per entry.
        max_rows: the most rows in one call. Defaults to `MAX_BATCH_ROWS`.
        name: the thread's name. Defaults to `"batcher"`.
    """

    def __init__(self, run, max_rows=MAX_BATCH_ROWS, name="batcher"):
        self._run = run
        self._max_rows = max_rows
        self._queue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def __call__(self, feed, timeout=60.0):
        """Returns the model's outputs for `feed` (`zoo.Model.feed`'s), once its batch has run."""
        job = _Job(feed)
        self._queue.put(job)
        if not job.done.wait(timeout):
            raise TimeoutError(f"the model did not answer within {timeout:g} s")
        if job.error is not None:
            raise job.error
        return job.result

    def close(self):
        """Stops the thread after the requests already queued."""
        self._queue.put(None)
        self._thread.join(timeout=5)

    def _loop(self):
        stopping = False
        while not stopping:
            job = self._queue.get()
            if job is None:
                return
            jobs, rows = [job], job.rows
            while rows < self._max_rows:
                try:
                    job = self._queue.get_nowait()
                except queue.Empty:
                    break
                if job is None:
                    stopping = True
                    break
                jobs.append(job)
                rows += job.rows
            self._run_batch(jobs)

    def _run_batch(self, jobs):
        try:
            if len(jobs) == 1:
                jobs[0].result = self._run(jobs[0].feed)
            else:
                feeds = [j.feed for j in jobs]
                outputs = self._run({k: np.concatenate([f[k] for f in feeds]) for k in feeds[0]}
                                    if isinstance(feeds[0], dict) else np.concatenate(feeds))
                start = 0
                for j in jobs:
                    end = start + j.rows
                    j.result = {k: v[start:end] for k, v in outputs.items()}
                    start = end
        except Exception as error:  # handed to every waiting request
            for j in jobs:
                j.error = error
        for j in jobs:
            j.done.set()


class _Job:
    __slots__ = ("feed", "rows", "result", "error", "done")

    def __init__(self, feed):
        self.feed = feed
        self.rows = len(next(iter(feed.values())) if isinstance(feed, dict) else feed)
        self.result = None
        self.error = None
        self.done = threading.Event()


class ModelStore:
    """The models under a folder, loaded on first use and kept; versions listed per request.

    Args:
        model_dir: the export root (`saved_models`).
        batching: `"on"` joins concurrent requests into one model call, `"off"`
            calls the model once per request, `"auto"` batches models run by the
            SavedModel (a call costs ~0.5 ms, so sharing it pays) and not ONNX
            ones (a call costs ~20 µs, less than the hand-over to a batching
            thread). Defaults to `"auto"`.
    """

    def __init__(self, model_dir, batching="auto"):
        if batching not in BATCHING:
            raise ValueError(f"`batching` must be one of {', '.join(BATCHING)}. Received: batching={batching!r}")
        self.model_dir = Path(model_dir)
        self.batching = batching
        self._loaded = {}
        self._lock = threading.Lock()

    def versions(self, name):
        """The versions of `name`, oldest first; 404 if it has none."""
        found = versions(self.model_dir / name)
        if not found:
            known = zoo.names(self.model_dir)
            raise HTTPError(
                404, f"Servable not found for request: no model {name!r} under {self.model_dir} "
                f"(models: {', '.join(known) or 'none'})",
            )
        return found

    def resolve(self, name, version=None):
        """The version a request means: `version`, or the newest."""
        found = self.versions(name)
        if version is None:
            return found[-1]
        if version not in found:
            raise HTTPError(
                404, f"Servable not found for request: model {name!r} has no version {version} "
                f"(versions: {', '.join(map(str, found))})",
            )
        return version

    def get(self, name, version):
        """The loaded `(model, call)` of one version; loads it on first use."""
        key = (name, version)
        entry = self._loaded.get(key)
        if entry is not None:
            return entry
        with self._lock:
            entry = self._loaded.get(key)
            if entry is None:
                try:
                    model = zoo.load_folder(self.model_dir / name / str(version))
                except (zoo.ModelLoadError, zoo.ModelNotFoundError) as error:
                    raise HTTPError(
                        404, f"Servable not found for request: version {version} of {name!r} "
                        f"cannot be loaded: {error}",
                    ) from None
                batch = self.batching == "on" or (self.batching == "auto" and model.backend == "savedmodel")
                call = Batcher(model.run, name=f"batcher-{name}-{version}") if batch else model.run
                entry = self._loaded[key] = (model, call)
                log.info("loaded %s version %s (%s%s)", name, version, model.backend,
                         ", batching" if batch else "")
        return entry

    def preload(self):
        """Loads the newest version of every model; logs what it serves."""
        for name in zoo.names(self.model_dir):
            version = self.versions(name)[-1]
            try:
                self.get(name, version)
            except HTTPError as error:
                log.warning("%s", error.message)

    def close(self):
        for _, call in self._loaded.values():
            if isinstance(call, Batcher):
                call.close()


def status(store, name, version=None):
    """`GET /v1/models/NAME[/versions/V]`: TensorFlow Serving's version status."""
    chosen = [store.resolve(name, version)] if version is not None else store.versions(name)[::-1]
    entries = []
    for v in chosen:
        try:
            store.get(name, v)
            state, code, message = "AVAILABLE", "OK", ""
        except HTTPError as error:
            if version is not None:
                raise
            state, code, message = "END", "UNKNOWN", error.message
        entries.append({"version": str(v), "state": state,
                        "status": {"error_code": code, "error_message": message}})
    return {"model_version_status": entries}


def _tensor(dtype, dims, name):
    return {
        "dtype": dtype,
        "tensor_shape": {"dim": [{"size": str(d), "name": ""} for d in dims], "unknown_rank": False},
        "name": name,
    }


def metadata(store, name, version=None):
    """`GET .../metadata`: the model spec and the `serving_default` signature."""
    version = store.resolve(name, version)
    model, _ = store.get(name, version)
    shapes = {"probabilities": ("DT_FLOAT", [-1, len(model.class_names or ())]),
              "class_ids": ("DT_INT64", [-1]), "labels": ("DT_STRING", [-1]),
              "predictions": ("DT_FLOAT", [-1])}
    outputs = {
        out: _tensor(*shapes[out], f"StatefulPartitionedCall:{i}")
        for i, out in enumerate(model.output_names)  # a SavedModel numbers outputs in sorted order
    }
    dtypes = {"float32": "DT_FLOAT", "string": "DT_STRING"}
    signature = {
        "inputs": {name: _tensor(dtypes[dtype], shape, f"{zoo.SIGNATURE}_{name}:0")
                   for name, (dtype, shape) in sorted(model.signature_inputs.items())},
        "outputs": outputs,
        "method_name": "tensorflow/serving/predict",
        "defaults": {},
    }
    return {
        "model_spec": {"name": name, "signature_name": "", "version": str(version)},
        "metadata": {"signature_def": {"signature_def": {zoo.SIGNATURE: signature}}},
    }


def _instance_rows(model, instances):
    """Row-format `instances` as rows for `zoo.Model.feed`."""
    if not isinstance(instances, list) or not instances:
        raise HTTPError(400, "'instances' must be a non-empty list of rows")
    if zoo.INPUT not in model.signature_inputs:  # one named input per column: {column: value} rows
        return instances
    named = zoo.INPUT not in model.feature_names
    return [
        inst[zoo.INPUT] if named and isinstance(inst, dict) and list(inst) == [zoo.INPUT] else inst
        for inst in instances
    ]


def _input_rows(model, inputs):
    """Columnar `inputs` as rows: a matrix, `{"features": matrix}`, or feature columns."""
    if isinstance(inputs, dict):
        if (list(inputs) == [zoo.INPUT] and zoo.INPUT not in model.feature_names
                and zoo.INPUT in model.signature_inputs):
            inputs = inputs[zoo.INPUT]
        else:
            columns = list(inputs.values())
            if not all(isinstance(c, list) for c in columns) or len({len(c) for c in columns}) != 1:
                raise HTTPError(
                    400, "'inputs' as an object must be {\"features\": [[...], ...]} or "
                    "{feature_name: [values...]} with lists of one length",
                )
            return [dict(zip(inputs, values)) for values in zip(*columns)]
    if not isinstance(inputs, list) or not inputs:
        raise HTTPError(400, "'inputs' must be a non-empty list of rows or an object of columns")
    return inputs


def predict(store, name, version, body):
    """`POST .../NAME[/versions/V]:predict` on a parsed JSON body; returns `(answer, rows)`."""
    version = store.resolve(name, version)
    model, call = store.get(name, version)
    if not isinstance(body, dict):
        raise HTTPError(400, "The request body must be a JSON object with 'instances' or 'inputs'")
    signature = body.get("signature_name", "") or zoo.SIGNATURE
    if signature != zoo.SIGNATURE:
        raise HTTPError(
            400, f"Serving signature name: {signature!r} not found in signature def "
            f"(this model has {zoo.SIGNATURE!r})",
        )
    if ("instances" in body) == ("inputs" in body):
        raise HTTPError(
            400, "The request must have exactly one of 'instances' (row format) or 'inputs' "
            "(columnar format)" + (", not both" if "instances" in body else ""),
        )
    row_format = "instances" in body
    rows = _instance_rows(model, body["instances"]) if row_format else _input_rows(model, body["inputs"])
    try:
        feed = model.feed(rows)
    except ValueError as error:
        raise HTTPError(400, str(error)) from None
    outputs = call(feed)
    n_rows = len(next(iter(feed.values())))
    names = model.output_names
    columns = {k: outputs[k].tolist() for k in names}
    if row_format:
        if len(names) == 1:
            answer = {"predictions": columns[names[0]]}
        else:
            answer = {"predictions": [{k: columns[k][i] for k in names} for i in range(n_rows)]}
    else:
        answer = {"outputs": columns[names[0]] if len(names) == 1 else columns}
    return answer, n_rows


class Handler(http.server.BaseHTTPRequestHandler):
    """Routes TensorFlow Serving's REST paths; every answer is JSON."""

    protocol_version = "HTTP/1.1"  # keep-alive: clients reuse their connection
    disable_nagle_algorithm = True  # else headers and body, written apart, wait on a delayed ACK (~40 ms)
    server_version = "nn-recipes-serve"
    timeout = 60  # seconds an idle or slow connection may hold its thread

    def do_GET(self):
        self._handle("GET")

    def do_POST(self):
        self._handle("POST")

    def do_PUT(self):
        self._handle("PUT")

    def do_DELETE(self):
        self._handle("DELETE")

    def handle_expect_100(self):
        """Refuses a too-large body before the client sends it (`Expect: 100-continue`)."""
        try:
            self._content_length()
        except HTTPError as error:
            self._started = time.perf_counter()
            self._reply(error.status, {"error": error.message}, close=True)
            return False
        return super().handle_expect_100()

    def send_error(self, code, message=None, explain=None):
        """Malformed HTTP (bad request line, headers): JSON, like every other answer."""
        self._started = getattr(self, "_started", time.perf_counter())
        self.request_version = self.protocol_version  # a status line and headers, even then
        self._reply(code, {"error": message or http.HTTPStatus(code).phrase}, close=True)

    def log_message(self, format, *args):  # the stdlib's access log; ours is in _reply
        pass

    def _handle(self, method):
        self._started = time.perf_counter()
        self._rows = None
        self._unread = ("Transfer-Encoding" in self.headers
                        or self.headers.get("Content-Length", "0").strip() not in ("", "0"))
        try:
            status_code, answer = 200, self._route(method)
        except HTTPError as error:
            status_code, answer = error.status, {"error": error.message}
        except Exception as error:  # a bug: the client gets a message, the log the traceback
            log.exception("error answering %s %s", method, self.path)
            status_code, answer = 500, {"error": f"Internal error: {type(error).__name__}: {error}"}
        self._reply(status_code, answer, close=self._unread)

    def _route(self, method):
        path = self.path.split("?", 1)[0]
        match = _PATH.match(path)
        if match is None:
            raise HTTPError(404, f"Malformed request: {method} {path} (paths: /v1/models/NAME"
                                 "[/versions/V][/metadata | :predict])")
        name, verb = match["name"], match["verb"] or ""
        version = int(match["version"]) if match["version"] else None
        store = self.server.store
        if verb in (":classify", ":regress"):
            raise HTTPError(400, f"{verb[1:]} is not supported here; use :predict")
        if verb == ":predict":
            if method != "POST":
                raise HTTPError(405, f"{verb[1:]} takes POST, not {method}")
            answer, self._rows = predict(store, name, version, self._read_json())
            return answer
        if method != "GET":
            raise HTTPError(405, f"{path} takes GET, not {method}")
        if verb == "/metadata":
            return metadata(store, name, version)
        return status(store, name, version)

    def _content_length(self):
        if "Transfer-Encoding" in self.headers and "Content-Length" not in self.headers:
            raise HTTPError(
                411, "Send the body with a Content-Length header (chunked bodies are not accepted)"
            )
        text = self.headers.get("Content-Length")
        if text is None:
            return 0
        try:
            length = int(text)
        except ValueError:
            raise HTTPError(400, f"Content-Length must be an integer, not {text!r}") from None
        if length < 0:
            raise HTTPError(400, f"Content-Length must be >= 0, not {length}")
        limit = self.server.max_body_bytes
        if length > limit:
            if length <= DRAIN_BYTES and self.headers.get("Expect", "").lower() != "100-continue":
                self._discard(length)  # a client still sending would see a reset, not the 413
            raise HTTPError(413, f"The request body is {length} bytes; this server takes at most "
                                 f"{limit} (split the rows over several requests)")
        return length

    def _discard(self, length):
        while length > 0:
            chunk = self.rfile.read(min(length, 1 << 16))
            if not chunk:
                break
            length -= len(chunk)
        self._unread = False

    def _read_json(self):
        length = self._content_length()
        if length == 0:
            raise HTTPError(411 if "Content-Length" not in self.headers else 400,
                            "The request has no body: send a JSON object with 'instances' or 'inputs'")
        raw = self.rfile.read(length)
        self._unread = False
        try:
            return json.loads(raw)
        except (ValueError, RecursionError) as error:  # JSONDecodeError, bad UTF-8, absurd nesting
            raise HTTPError(400, f"The body is not valid JSON: {error}") from None

    def _reply(self, status_code, answer, close=False):
        body = json.dumps(answer).encode("utf-8")
        try:
            self.send_response_only(status_code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            if close:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            self.wfile.write(body)
        except OSError:  # the client went away
            self.close_connection = True
        rows = f" rows={self._rows}" if getattr(self, "_rows", None) else ""
        log.info('%s "%s %s" %d %.2fms%s', self.client_address[0], getattr(self, "command", None) or "-",
                 (getattr(self, "path", None) or "-").split("?", 1)[0], status_code,
                 (time.perf_counter() - self._started) * 1000, rows)


class Server(http.server.ThreadingHTTPServer):
    """`ThreadingHTTPServer` with a `ModelStore` and a request-body limit."""

    daemon_threads = True  # idle keep-alive connections do not hold up a shutdown
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address, store, max_body_bytes):
        self.store = store
        self.max_body_bytes = max_body_bytes
        super().__init__(address, Handler)

    def server_close(self):
        super().server_close()
        self.store.close()


@contextlib.contextmanager
def running(model_dir="saved_models", host="127.0.0.1", port=0, *, timeout=20.0, **options):
    """Serves `model_dir` from a background thread for the length of a `with` block.

    For tests and for apps that embed the server; it is always shut down on exit.

    Args:
        model_dir, host, options: as for `make_server`.
        port: the TCP port. Defaults to `0` (a free one; see `server_address`).
        timeout: seconds to wait for the thread at shutdown. Defaults to `20.0`.

    Yields:
        The running `Server`.
    """
    httpd = make_server(model_dir, host, port, **options)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield httpd
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=timeout)


def make_server(model_dir="saved_models", host="127.0.0.1", port=8501, *,
                max_body_bytes=MAX_BODY_BYTES, batching="auto", preload=True):
    """Creates (and binds) the server; call `serve_forever()` on it, `shutdown()` to stop.

    Args:
        model_dir: the export root to serve. Defaults to `"saved_models"`.
        host: the address to bind. Defaults to `"127.0.0.1"` (this machine only).
        port: the TCP port; `0` picks a free one (see `server_address`). Defaults to `8501`.
        max_body_bytes: larger request bodies get 413. Defaults to `MAX_BODY_BYTES`.
        batching: `"auto"`, `"on"` or `"off"` (see `ModelStore`). Defaults to `"auto"`.
        preload: load the newest version of every model now. Defaults to `True`.

    Returns:
        A `Server`.

    Raises:
        ValueError: `model_dir` is not a folder, or `max_body_bytes` < 1.
        OSError: the address cannot be bound (e.g. the port is taken).
    """
    if not Path(model_dir).is_dir():
        raise ValueError(
            f"`model_dir` must be a folder of exported models. Received: model_dir={str(model_dir)!r} "
            "(train one first, e.g. `python -m recipes.run multiclass-softmax`)"
        )
    if not (isinstance(max_body_bytes, int) and max_body_bytes >= 1):
        raise ValueError(
            f"`max_body_bytes` must be an integer >= 1. Received: max_body_bytes={max_body_bytes!r}"
        )
    store = ModelStore(model_dir, batching=batching)
    if preload:
        store.preload()
    return Server((host, port), store, max_body_bytes)


def main(argv=None):
    """`python -m models.serve`: serves until SIGINT or SIGTERM; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m models.serve",
        description="Serve every model under a folder with TensorFlow Serving's REST API.",
    )
    parser.add_argument("--model-dir", default="saved_models", help="export root (default: saved_models)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to bind (default: 127.0.0.1, this machine only; 0.0.0.0 for all)")
    parser.add_argument("--port", type=int, default=8501,
                        help="TCP port (default: 8501, TF Serving's REST port; 0 picks a free one)")
    parser.add_argument("--max-body-bytes", type=int, default=MAX_BODY_BYTES,
                        help=f"larger request bodies get 413 (default: {MAX_BODY_BYTES})")
    parser.add_argument("--batching", choices=BATCHING, default="auto",
                        help="join concurrent requests into one model call: on, off, or auto "
                             "(default: for SavedModel-run models, not ONNX ones, as measured)")
    parser.add_argument("--quiet", action="store_true", help="no per-request log lines")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="%(asctime)s %(message)s", stream=sys.stderr)
    try:
        server = make_server(args.model_dir, args.host, args.port, max_body_bytes=args.max_body_bytes,
                             batching=args.batching)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"error: cannot listen on {args.host}:{args.port}: {error.strerror or error}. "
              "Pick another --port or stop what uses it.", file=sys.stderr)
        return 1
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    print(f"Serving {', '.join(zoo.names(args.model_dir)) or 'no models yet'} from {args.model_dir} "
          f"on http://{host}:{port}/v1/models/NAME (Ctrl-C to stop)", file=sys.stderr, flush=True)
    while not stop.wait(0.5):
        pass
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)
    print("Stopped.", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
