"""A TensorFlow-Serving-compatible server for every model under a folder: REST, and gRPC on request.

    python -m models.serve [--model-dir saved_models] [--host 127.0.0.1] [--port 8501]
                           [--grpc-port 8500] [--version-label NAME:LABEL=VERSION ...]

It speaks TensorFlow Serving's REST API as TensorFlow Serving's own source
defines it (`models.serving.rest` cites the files), so a client written
against either works unchanged against the other:

- `GET /v1/models/NAME[/versions/V | /labels/L]`: `{"model_version_status": [...]}`;
- `GET /v1/models/NAME[/versions/V | /labels/L]/metadata`: `{"model_spec": ...,
  "metadata": {"signature_def": ...}}`, every signature of the SavedModel;
- `POST /v1/models/NAME[/versions/V | /labels/L]:predict` with `{"instances":
  [...]}` (row format, answered with `{"predictions": [...]}`) or `{"inputs":
  ...}` (columnar, answered with `{"outputs": ...}`).

With `--grpc-port`, it also serves TensorFlow Serving's gRPC API
(`tensorflow.serving.PredictionService`, `tensorflow.serving.ModelService`;
`models.serving.grpc_api`), which imports TensorFlow's protos: the REST-only
server never imports TensorFlow for models exported with ONNX.

Errors are `{"error": "message"}` with TensorFlow Serving's status for each
(400 bad request or malformed path, 404 no such model or version), plus ours:
413 (body over `--max-body-bytes`) and 408 (a request not whole within
`--request-timeout`). The server never answers with a traceback and stays up.
The newest version is served by default; a version folder added while the
server runs is used by the next request. For a model run by the SavedModel,
requests that arrive while the model is busy are run together in one call
(`Batcher`); ONNX calls are run as they come (`--batching on|off` overrides;
`scripts/bench_serve.py` measures both). One log line per request; SIGINT
and SIGTERM stop it cleanly.

Connections are cheap: one event loop reads every request whole before one
of `--workers` threads answers it, so thousands of idle or half-sent
connections hold no thread. It binds 127.0.0.1 by default.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
import threading
from pathlib import Path

from models import zoo
from models.serving.rest import Server
from models.serving.store import BATCHING, Batcher, ModelStore, ServingError, parse_labels

MAX_BODY_BYTES = 8 * 1024 * 1024
"""The default request-body limit: about 100,000 rows of 30 features."""

REQUEST_TIMEOUT = 10.0
"""Seconds a request may take to arrive whole (from the connection's last answer or its opening)."""

WORKERS = 16
"""Threads answering whole requests (REST), and gRPC's, each."""

__all__ = ["Batcher", "ModelStore", "Server", "ServingError", "main", "make_server", "running"]

log = logging.getLogger("models.serve")


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
                max_body_bytes=MAX_BODY_BYTES, batching="auto", preload=True, version_labels=(),
                grpc_port=None, request_timeout=REQUEST_TIMEOUT, workers=WORKERS, enable_cors=False):
    """Creates (and binds) the server; call `serve_forever()` on it, `shutdown()` to stop.

    Args:
        model_dir: the export root to serve. Defaults to `"saved_models"`.
        host: the address to bind. Defaults to `"127.0.0.1"` (this machine only).
        port: the REST port; `0` picks a free one (see `server_address`). Defaults to `8501`.
        max_body_bytes: larger request bodies get 413. Defaults to `MAX_BODY_BYTES`.
        batching: `"auto"`, `"on"` or `"off"` (see `ModelStore`). Defaults to `"auto"`.
        preload: load the newest version of every model now. Defaults to `True`.
        version_labels: `"NAME:LABEL=VERSION"` strings, TensorFlow Serving's
            `version_labels`. Defaults to none.
        grpc_port: also serve TensorFlow Serving's gRPC API on this port (`0`:
            a free one, see `server.grpc.port`); imports TensorFlow's protos.
            Defaults to `None` (REST only).
        request_timeout: seconds a request may take to arrive whole. Defaults to `REQUEST_TIMEOUT`.
        workers: threads answering requests (REST, and gRPC's). Defaults to `WORKERS`.
        enable_cors: send TensorFlow Serving's CORS headers with every REST answer
            (its `--enable_cors_support`). Defaults to `False`.

    Returns:
        A `Server`; `server.grpc` is the gRPC server, or `None`.

    Raises:
        ValueError: a bad argument (the message names it and the fix).
        OSError: the address cannot be bound (e.g. the port is taken).
    """
    if not Path(model_dir).is_dir():
        raise ValueError(
            f"`model_dir` must be a folder of exported models. Received: model_dir={str(model_dir)!r} "
            "(train one first, e.g. `python -m recipes.run multiclass-softmax`)"
        )
    for name, value, low in (("max_body_bytes", max_body_bytes, 1), ("workers", workers, 1)):
        if not (isinstance(value, int) and not isinstance(value, bool) and value >= low):
            raise ValueError(f"`{name}` must be an integer >= {low}. Received: {name}={value!r}")
    if not (isinstance(request_timeout, (int, float)) and request_timeout > 0):
        raise ValueError(f"`request_timeout` must be a number of seconds > 0. Received: "
                         f"request_timeout={request_timeout!r}")
    store = ModelStore(model_dir, batching=batching, labels=parse_labels(version_labels, model_dir))
    if preload:
        store.preload()
    server = Server((host, port), store, max_body_bytes=max_body_bytes, request_timeout=request_timeout,
                    workers=workers, enable_cors=enable_cors)
    if grpc_port is not None:
        from models.serving import grpc_api  # TensorFlow's protos: only when asked for

        try:
            server.grpc = grpc_api.serve(store, host, grpc_port, workers=workers)
        except BaseException:
            server.server_close()
            raise
    return server


def main(argv=None):
    """`python -m models.serve`: serves until SIGINT or SIGTERM; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m models.serve",
        description="Serve every model under a folder with TensorFlow Serving's REST (and gRPC) API.",
    )
    parser.add_argument("--model-dir", default="saved_models", help="export root (default: saved_models)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to bind (default: 127.0.0.1, this machine only; 0.0.0.0 for all)")
    parser.add_argument("--port", type=int, default=8501,
                        help="REST port (default: 8501, TF Serving's REST port; 0 picks a free one)")
    parser.add_argument("--grpc-port", type=int, default=None,
                        help="also serve TF Serving's gRPC API on this port (TF Serving's is 8500; "
                             "imports TensorFlow's protos); default: REST only")
    parser.add_argument("--version-label", action="append", default=[], metavar="NAME:LABEL=VERSION",
                        help="route /labels/LABEL (and gRPC version_label) of model NAME to VERSION; "
                             "repeatable")
    parser.add_argument("--max-body-bytes", type=int, default=MAX_BODY_BYTES,
                        help=f"larger request bodies get 413 (default: {MAX_BODY_BYTES})")
    parser.add_argument("--request-timeout", type=float, default=REQUEST_TIMEOUT,
                        help=f"seconds a request may take to arrive whole; then 408 and the connection "
                             f"is closed (default: {REQUEST_TIMEOUT:g})")
    parser.add_argument("--workers", type=int, default=WORKERS,
                        help=f"threads answering requests (default: {WORKERS})")
    parser.add_argument("--enable-cors", action="store_true",
                        help="send CORS headers with every answer (TF Serving's --enable_cors_support)")
    parser.add_argument("--batching", choices=BATCHING, default="auto",
                        help="join concurrent requests into one model call: on, off, or auto "
                             "(default: for SavedModel-run models, not ONNX ones, as measured)")
    parser.add_argument("--quiet", action="store_true", help="no per-request log lines")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="%(asctime)s %(message)s", stream=sys.stderr)
    try:
        server = make_server(args.model_dir, args.host, args.port, max_body_bytes=args.max_body_bytes,
                             batching=args.batching, version_labels=args.version_label,
                             grpc_port=args.grpc_port, request_timeout=args.request_timeout,
                             workers=args.workers, enable_cors=args.enable_cors)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"error: cannot listen on {args.host}: {error.strerror or error}. "
              "Pick another --port / --grpc-port or stop what uses it.", file=sys.stderr)
        return 1
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    grpc = f" and gRPC on {host}:{server.grpc.port}" if server.grpc is not None else ""
    print(f"Serving {', '.join(zoo.names(args.model_dir)) or 'no models yet'} from {args.model_dir} "
          f"on http://{host}:{port}/v1/models/NAME{grpc} (Ctrl-C to stop)", file=sys.stderr, flush=True)
    while not stop.wait(0.5):
        pass
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)
    print("Stopped.", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
