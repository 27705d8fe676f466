"""TensorFlow Serving's REST API over HTTP/1.1: one event loop reads, a bounded pool answers.

Routing follows `model_servers/http_rest_api_util.cc` (`kPredictionApiGegex`,
`kModelStatusApiRegex`, `ParseModelInfo`) and `http_rest_api_handler.cc`
(`ProcessRequest`): paths are matched case-insensitively; `POST
/v1/models/NAME[/versions/V | /labels/L]:(predict|classify|regress)`, `GET
/v1/models/NAME[/versions/V | /labels/L][/metadata]`; any other method or
path under `/v1/` is a 400 "Malformed request", `GET /v1/models` with no name
is a 400 "Missing model name in request."; names and labels are URL-decoded.
`OPTIONS` is a CORS preflight (`http_server.cc`): 200 when an `Origin` header
names an http(s) origin, else 400. Bodies may be chunked and gzip-encoded
(`util/net_http/server/internal/evhttp_request.cc`, `ReadRequestGzipBytes`).

Connections cannot exhaust the server. One asyncio loop reads every
connection until its request is whole (headers, then a `Content-Length` or
chunked body, at most `max_body_bytes`), so an idle or half-sent connection
holds no thread; a request that has not arrived whole `request_timeout`
seconds after the connection opened or answered its last request is answered
408 (or closed, if nothing came) and its connection closed. Whole requests are
answered by a fixed pool of `workers` threads (JSON parsing, the model, the
answer), so the thread count is bounded whatever the clients do; small requests
for a loaded ONNX-run model are answered on the loop itself, which costs less
than the hand-over to a thread.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import http
import json
import logging
import re
import socket
import threading
import time
import urllib.parse
import zlib

from models.export.layout import SIGNATURE
from models.serving import json_tensor
from models.serving.store import ServingError, feed, invalid, method_error, rows_of

PREDICTION_PATH = re.compile(
    r"/v1/models/([^/:]+)(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?:(classify|regress|predict)",
    re.IGNORECASE,
)
"""`kPredictionApiGegex` (`http_rest_api_util.cc`)."""
STATUS_PATH = re.compile(
    r"/v1/models(?:/([^/:]+))?(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?(?:/(metadata))?",
    re.IGNORECASE,
)
"""`kModelStatusApiRegex` (`http_rest_api_util.cc`)."""
API_PATH = re.compile(r"/v1/.*", re.IGNORECASE)
"""`kHTTPRestApiHandlerPathRegex`: other paths are not TensorFlow Serving's (404)."""

INT64_MAX = (1 << 63) - 1
MAX_HEADER_BYTES = 64 * 1024
BACKLOG = 1024
"""Connections the kernel queues before they are accepted (a burst beyond it waits for SYN retries)."""
INLINE_BYTES = 16 * 1024
"""Requests up to this size for a quick model are answered on the event loop (`Server._inline`)."""
DRAIN_BYTES = 64 * 1024 * 1024
"""A too-large body up to this size is read and dropped before the 413, so the client sees it."""
CORS_HEADERS = (("Access-Control-Allow-Origin", "*"), ("Access-Control-Allow-Methods", "POST, GET"),
                ("Access-Control-Allow-Headers", "Content-Type"))
"""`AddCORSHeaders` (`http_rest_api_util.cc`), sent with `enable_cors`."""

log = logging.getLogger("models.serve")


class _Refused(Exception):
    """An HTTP-level refusal (413, 400, 408): answered, then the connection is closed."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message


class Request:
    __slots__ = ("method", "path", "version", "headers", "body", "started")

    def __init__(self, method, path, version, headers, body, started):
        self.method, self.path, self.version = method, path, version
        self.headers, self.body, self.started = headers, body, started


def route(store, method, path, body):
    """Answers one request: `(http_status, body_bytes, rows)`; never raises."""
    rows = None
    try:
        answer, rows = _dispatch(store, method, path, body)
        return 200, answer, rows
    except ServingError as error:
        status, message = error.http_status, error.message
    except Exception as error:  # a bug: the client gets a message, the log the traceback
        log.exception("error answering %s %s", method, path)
        status, message = 500, f"Internal error: {type(error).__name__}: {error}"
    return status, json.dumps({"error": message}).encode("utf-8"), rows


def _dispatch(store, method, path, body):
    malformed = invalid(f"Malformed request: {method} {path}")
    if not API_PATH.fullmatch(path):  # not dispatched to the REST handler at all
        raise ServingError("NOT_FOUND", f"Malformed request: {method} {path} (paths: /v1/models/NAME"
                                        "[/versions/V | /labels/L][/metadata | :predict])")
    if method == "POST":
        match = PREDICTION_PATH.fullmatch(path)
    elif method == "GET":
        match = STATUS_PATH.fullmatch(path)
    else:
        raise malformed
    if match is None:
        raise malformed
    name, version_text, label, verb = match.groups()
    name = urllib.parse.unquote(name) if name else ""
    label = urllib.parse.unquote(label) if label else None
    version = None
    if version_text:
        version = int(version_text)
        if version > INT64_MAX:
            raise invalid(f"Failed to convert version: {version_text} to numeric.")
    if method == "POST":
        if verb == "predict":
            return predict(store, name, version, label, body)
        if verb in ("classify", "regress"):
            return classify_or_regress(store, name, version, label, verb, body), None
        raise malformed  # `:PREDICT`: the path matches, the method name does not
    if not name:
        raise invalid("Missing model name in request.")
    if verb == "metadata":
        return _json(metadata(store, name, version, label)), None
    return _json(status(store, name, version, label)), None


def _json(answer):
    return json.dumps(answer).encode("utf-8")


def status(store, name, version=None, label=None):
    """`GET /v1/models/NAME[/versions/V | /labels/L]`: `{"model_version_status": [...]}`."""
    return {"model_version_status": [
        {"version": str(v), "state": state, "status": {"error_code": code, "error_message": message}}
        for v, state, code, message in store.status(name, version)
    ]}


def metadata(store, name, version=None, label=None):
    """`GET .../metadata`: the model spec and every signature def of the SavedModel."""
    version = store.resolve(name, version, label)
    return {
        "model_spec": {"name": name, "signature_name": "", "version": str(version)},
        "metadata": {"signature_def": {"signature_def": store.signature_defs(name, version)}},
    }


def predict(store, name, version, label, body):
    """`POST ...:predict`: `(answer_bytes, rows)` (`ProcessPredictRequest`, `FillPredictRequestFromJson`)."""
    doc = json_tensor.parse(body)
    signature = doc.get("signature_name", "") or SIGNATURE
    version = store.resolve(name, version, label)
    inputs = store.signature_inputs(name, version, signature)
    if not inputs:
        raise invalid(f"Failed to get input map for signature: {signature}")
    if signature != SIGNATURE:
        raise invalid(f"This server runs the {SIGNATURE!r} signature only, not {signature!r}")
    model, call = store.get(name, version)
    rows, row_format = json_tensor.request_rows(doc, model)
    inputs = feed(model, rows)
    outputs = call(inputs)
    return json_tensor.answer(outputs, model.output_names, row_format), rows_of(inputs)


def classify_or_regress(store, name, version, label, method, body):
    """`:classify` / `:regress` on a predict signature: TensorFlow Serving's 400."""
    doc = json_tensor.parse(body)
    signature = doc.get("signature_name", "") or SIGNATURE
    version = store.resolve(name, version, label)
    defs = store.signature_defs(name, version)
    if signature not in defs:
        raise invalid(f"No signature was found with the name: {signature}")
    raise invalid(method_error(defs[signature], method))


class Server:
    """The REST server: binds at once; `serve_forever()` runs it, `shutdown()` stops it.

    Args:
        address: `(host, port)`; port `0` picks a free one (see `server_address`).
        store: the `ModelStore`.
        max_body_bytes: larger bodies (as sent, and once decompressed) get 413.
        request_timeout: seconds a request may take to arrive whole.
        workers: threads that answer whole requests.
        enable_cors: add TensorFlow Serving's CORS headers to every answer.
    """

    def __init__(self, address, store, *, max_body_bytes, request_timeout, workers, enable_cors=False):
        self.store = store
        self.max_body_bytes = max_body_bytes
        self.request_timeout = request_timeout
        self.enable_cors = enable_cors
        self.socket = socket.create_server(address, backlog=BACKLOG)
        self.socket.setblocking(False)
        self.server_address = self.socket.getsockname()
        self._pool = concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="rest-worker")
        self._loop = None
        self._stopped = threading.Event()
        self._stopped.set()
        self._stop = None
        self.connections = 0
        self.grpc = None

    def serve_forever(self, poll_interval=None):
        """Serves until `shutdown()`; `poll_interval` is accepted for `socketserver` compatibility."""
        self._stopped.clear()
        if self.grpc is not None:
            self.grpc.start()
        try:
            asyncio.run(self._serve())
        finally:
            self._stopped.set()

    async def _serve(self):
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        server = await asyncio.start_server(self._connection, sock=self.socket, limit=MAX_HEADER_BYTES,
                                            backlog=BACKLOG)  # (asyncio listens again, by default 100)
        async with server:
            await self._stop.wait()
        self._loop = None

    def shutdown(self):
        """Stops `serve_forever` (from another thread) and waits for it."""
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None:
            try:
                loop.call_soon_threadsafe(stop.set)
            except RuntimeError:  # the loop has closed meanwhile
                pass
        self._stopped.wait(10)

    def server_close(self):
        if self.grpc is not None:
            self.grpc.stop()
        self.socket.close()
        self._pool.shutdown(wait=False, cancel_futures=True)
        self.store.close()

    async def _connection(self, reader, writer):
        self.connections += 1
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        peer = (writer.get_extra_info("peername") or ("-",))[0]
        try:
            while True:
                started, expired = [None], []
                timer = self._loop.call_later(self.request_timeout, self._expire, writer, started, expired, peer)
                try:
                    request = await self._read(reader, writer, started)
                except _Refused as refused:
                    if not expired:
                        await self._write(writer, refused.status, _error(refused.message), True,
                                          started[0] or time.perf_counter(), peer, "-", "-")
                    return
                finally:
                    timer.cancel()
                if request is None or expired:
                    return
                close = _wants_close(request)
                if request.method == "OPTIONS":
                    status, body, rows = self._preflight(request)
                elif self._inline(request):
                    status, body, rows = self._answer(request)
                else:
                    status, body, rows = await self._loop.run_in_executor(self._pool, self._answer, request)
                if not await self._write(writer, status, body, close, request.started, peer,
                                         request.method, request.path, rows):
                    return
                if close:
                    return
        except (ConnectionError, asyncio.IncompleteReadError, OSError):
            pass
        except asyncio.CancelledError:  # shutting down: the connection just closes
            pass
        finally:
            self.connections -= 1
            writer.close()

    def _expire(self, writer, started, expired, peer):
        """The request timeout: a 408 if part of a request came, then the connection is closed."""
        expired.append(True)
        if started[0] is not None:
            self._send(writer, 408, _error(f"The request did not arrive whole within {self.request_timeout:g} s "
                                           "(the server's --request-timeout)"), True, started[0], peer, "-", "-")
        writer.close()  # the pending read ends, and `_connection` with it

    def _inline(self, request):
        """Whether to answer on the event loop: a small body for a model whose calls are quick.

        Handing a request to a worker thread costs more than answering a 1-row predict of
        a loaded, unbatched (ONNX-run) model; anything else (big bodies, batched or
        unloaded models) goes to the workers, so the loop is never held for long.
        """
        if len(request.body) > INLINE_BYTES:
            return False
        match = (PREDICTION_PATH if request.method == "POST" else STATUS_PATH).fullmatch(request.path)
        return bool(match and match.group(1)) and self.store.quick(urllib.parse.unquote(match.group(1)))

    def _preflight(self, request):
        """`OPTIONS`: `http_server.cc`'s CORS preflight check."""
        if re.search(r"https?://", request.headers.get("origin", "")):
            return 200, b"", None
        return 400, _error("Origin header is missing in CORS preflight"), None

    def _answer(self, request):
        try:
            body = _decoded(request, self.max_body_bytes)
        except _Refused as refused:
            return refused.status, _error(refused.message), None
        return route(self.store, request.method, request.path.split("?", 1)[0], body)

    async def _read(self, reader, writer, started):
        """One whole request, or `None` at a clean end of the connection."""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as error:
            if error.partial.strip():
                started[0] = time.perf_counter()
                raise _Refused(400, "The request ended before its headers did") from None
            return None
        except asyncio.LimitOverrunError:
            raise _Refused(431, f"The request's headers are over {MAX_HEADER_BYTES} bytes") from None
        started[0] = time.perf_counter()
        lines = head.decode("latin-1").split("\r\n")
        while lines and not lines[0]:  # stray CRLFs between requests
            lines.pop(0)
        parts = lines[0].split() if lines else []
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            raise _Refused(400, f"Bad request line: {(lines[0] if lines else '')[:100]!r}")
        method, path, version = parts
        headers = {}
        for line in lines[1:]:
            if not line:
                continue
            key, sep, value = line.partition(":")
            if not sep:
                raise _Refused(400, f"Bad header line: {line[:100]!r}")
            key = key.strip().lower()
            headers[key] = f"{headers[key]}, {value.strip()}" if key in headers else value.strip()
        body = await self._read_body(reader, writer, headers)
        return Request(method, path, version, headers, body, started[0])

    async def _read_body(self, reader, writer, headers):
        limit = self.max_body_bytes
        if "chunked" in headers.get("transfer-encoding", "").lower():
            if headers.get("expect", "").lower() == "100-continue":
                writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            return await self._read_chunked(reader, limit)
        text = headers.get("content-length")
        if text is None:
            return b""
        try:
            length = int(text)
            if length < 0:
                raise ValueError
        except ValueError:
            raise _Refused(400, f"Content-Length must be an integer >= 0, not {text!r}") from None
        if length > limit:
            if length <= DRAIN_BYTES and headers.get("expect", "").lower() != "100-continue":
                while length > 0:  # a client still sending would see a reset, not the 413
                    chunk = await reader.read(min(length, 1 << 16))
                    if not chunk:
                        break
                    length -= len(chunk)
            raise _Refused(413, f"The request body is {text} bytes; this server takes at most "
                                f"{limit} (split the rows over several requests)")
        if headers.get("expect", "").lower() == "100-continue":
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        return await reader.readexactly(length)

    async def _read_chunked(self, reader, limit):
        parts, total = [], 0
        while True:
            line = await reader.readline()
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise _Refused(400, f"Bad chunk size line: {line[:40]!r}") from None
            if size == 0:
                break
            total += size
            if total > limit:
                raise _Refused(413, f"The chunked request body is over {limit} bytes, the most "
                                    "this server takes (split the rows over several requests)")
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)
        while (await reader.readline()).strip():  # trailers
            pass
        return b"".join(parts)

    def _send(self, writer, status, body, close, started, peer, method, path, rows=None):
        phrase = http.HTTPStatus(status).phrase if status in http.HTTPStatus._value2member_map_ else ""
        head = [f"HTTP/1.1 {status} {phrase}"]
        if body:
            head.append("Content-Type: application/json")
        head.append(f"Content-Length: {len(body)}")
        if self.enable_cors:
            head.extend(f"{k}: {v}" for k, v in CORS_HEADERS)
        if close:
            head.append("Connection: close")
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
        log.info('%s "%s %s" %d %.2fms%s', peer, method, path.split("?", 1)[0], status,
                 (time.perf_counter() - started) * 1000, f" rows={rows}" if rows else "")

    async def _write(self, writer, status, body, close, started, peer, method, path, rows=None):
        self._send(writer, status, body, close, started, peer, method, path, rows)
        try:
            await writer.drain()
            return True
        except (ConnectionError, OSError):
            return False


def _wants_close(request):
    connection = request.headers.get("connection", "").lower()
    return "close" in connection or (request.version == "HTTP/1.0" and "keep-alive" not in connection)


def _decoded(request, limit):
    """The body, gunzipped when `Content-Encoding` says gzip (at most `limit` bytes once inflated)."""
    body = request.body
    if "gzip" not in request.headers.get("content-encoding", "").lower() or not body:
        return body
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        data = inflater.decompress(body, limit + 1)
    except zlib.error as error:
        raise _Refused(400, f"The body says Content-Encoding: gzip but cannot be decompressed: {error}") from None
    if len(data) > limit or inflater.unconsumed_tail:
        raise _Refused(413, f"The gzip-encoded body is over {limit} bytes once decompressed, the most "
                            "this server takes (split the rows over several requests)")
    return data


def _error(message):
    return json.dumps({"error": message}).encode("utf-8")

