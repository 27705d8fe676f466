"""What the REST and gRPC servers share: the models, their versions and labels, and the calls.

Both front ends answer the same three questions the same way, as TensorFlow
Serving's `ServerCore` does (`model_servers/server_core.cc`,
`model_servers/get_model_status_impl.cc`,
`servables/tensorflow/get_model_metadata_impl.cc`): which version a
`(name, version | label)` spec means, the status of a model's versions, its
signature defs; and they run a model on one feed. Errors are `ServingError`s
carrying TensorFlow's canonical status code (`INVALID_ARGUMENT`, `NOT_FOUND`,
...), which REST maps to an HTTP status as `model_servers/http_server.cc`'s
`ToHTTPStatusCode` does, and gRPC returns as it is.

The zoo is used in two places only: `feed` (a request's rows into the checked
inputs of the signature) and `runner` (the call that runs a feed).
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from pathlib import Path

import numpy as np

from models import zoo
from models.export.layout import INPUT, SAVEDMODEL_FILE, SIGNATURE, versions
from models.serving import signatures

BATCHING = ("auto", "on", "off")

MAX_BATCH_ROWS = 4096
"""A batch takes waiting requests until it holds this many rows."""

HTTP_STATUS = {
    "OK": 200, "CANCELLED": 499, "UNKNOWN": 500, "INVALID_ARGUMENT": 400, "DEADLINE_EXCEEDED": 504,
    "NOT_FOUND": 404, "ALREADY_EXISTS": 409, "PERMISSION_DENIED": 403, "RESOURCE_EXHAUSTED": 429,
    "FAILED_PRECONDITION": 400, "ABORTED": 409, "OUT_OF_RANGE": 400, "UNIMPLEMENTED": 501,
    "INTERNAL": 500, "UNAVAILABLE": 503, "DATA_LOSS": 500, "UNAUTHENTICATED": 401,
}
"""Canonical status code → HTTP status (`http_server.cc`, `ToHTTPStatusCode`)."""

SETTLED_SECONDS = 1.0
"""A model folder's listing is reused once its modification time is this old."""

log = logging.getLogger("models.serve")


class ServingError(Exception):
    """A request refused with a canonical status code (`NOT_FOUND`, `INVALID_ARGUMENT`, ...)."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def http_status(self):
        return HTTP_STATUS.get(self.code, 500)


def invalid(message):
    return ServingError("INVALID_ARGUMENT", message)


def parse_labels(specs, model_dir):
    """`["NAME:LABEL=VERSION", ...]` (`--version-label`) as `{name: {label: version}}`.

    Raises:
        ValueError: a spec not of that form, or naming a version that is not there.
    """
    labels = {}
    for spec in specs or ():
        name, sep, rest = str(spec).partition(":")
        label, eq, version = rest.partition("=")
        if not (sep and eq and name and label and version.isdigit()) or "/" in label:
            raise ValueError(
                f"`--version-label` must be NAME:LABEL=VERSION, e.g. multiclass-softmax:stable=1. "
                f"Received: {spec!r}"
            )
        found = versions(Path(model_dir) / name)
        if int(version) not in found:
            raise ValueError(
                f"`--version-label {spec}` names version {version} of {name!r}, which is not under "
                f"{model_dir} (versions: {', '.join(map(str, found)) or 'none'}); TensorFlow Serving "
                "also refuses a label for a version it does not serve."
            )
        labels.setdefault(name, {})[label] = int(version)
    return labels


def feed(model, rows):
    """A request's rows as the checked inputs of the model's signature (`zoo.Model.feed`).

    Beyond `zoo.Model.feed`, `NaN` and `±Infinity` are taken for a `features`
    input, as TensorFlow Serving's JSON parser takes them (`util/json_tensor.cc`,
    `kParseNanAndInfFlag`); an export that imputes missing values reads NaN as missing.

    Raises:
        ServingError: `INVALID_ARGUMENT`, naming the row and value.
    """
    try:
        with np.errstate(over="ignore"):  # beyond float32's range: inf, as TF Serving reads it
            return model.feed(rows)
    except ValueError as error:
        x = _non_finite(model, rows) if INPUT in model.signature_inputs else None
        if x is None:
            raise invalid(str(error)) from None
        return {INPUT: x}


def _non_finite(model, rows):
    """Numeric rows of the right width that hold NaN or ±inf, as float32; else `None`."""
    if isinstance(rows, list) and rows and isinstance(rows[0], dict):
        if not all(isinstance(r, dict) and sorted(r) == sorted(model.feature_names) for r in rows):
            return None
        rows = [[r[f] for f in model.feature_names] for r in rows]
    try:
        x = np.asarray(rows)
    except ValueError:
        return None
    if x.dtype.kind not in "iuf" or x.ndim != 2 or x.shape[1] != len(model.feature_names) or not len(x):
        return None
    with np.errstate(over="ignore"):
        x = x.astype(np.float32)
    return None if np.isfinite(x).all() else np.ascontiguousarray(x)


def runner(model):
    """`callable(feed) -> {output: array}` running `model` on a `feed` (`zoo.Model.run`)."""
    return model.run


def rows_of(inputs):
    return len(next(iter(inputs.values())))


class Batcher:
    """Runs a model on requests as they come, joining the ones that wait into one call.

    One thread calls the model. While it is busy, requests queue up; its next
    call takes all of them (up to `max_rows` rows, each input concatenated
    along its first axis), so under load many requests share one call, and a
    lone request does not wait for company.

    Args:
        run: `callable(feed) -> {name: array}`, a feed being `{input: array}`.
        max_rows: the most rows in one call. Defaults to `MAX_BATCH_ROWS`.
        name: the thread's name. Defaults to `"batcher"`.
    """

    def __init__(self, run, max_rows=MAX_BATCH_ROWS, name="batcher"):
        self._run = run
        self._max_rows = max_rows
        self._queue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def __call__(self, inputs, timeout=60.0):
        """Returns the model's outputs for the feed `inputs`, once its batch has run."""
        job = _Job(inputs)
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
                jobs[0].result = self._run(jobs[0].inputs)
            else:
                joined = {k: np.concatenate([j.inputs[k] for j in jobs]) for k in jobs[0].inputs}
                outputs = self._run(joined)
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
    __slots__ = ("inputs", "rows", "result", "error", "done")

    def __init__(self, inputs):
        self.inputs = inputs
        self.rows = rows_of(inputs)
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
        labels: `{name: {label: version}}` (see `parse_labels`). Defaults to none.
    """

    def __init__(self, model_dir, batching="auto", labels=None):
        if batching not in BATCHING:
            raise ValueError(f"`batching` must be one of {', '.join(BATCHING)}. Received: batching={batching!r}")
        self.model_dir = Path(model_dir)
        self.batching = batching
        self.labels = dict(labels or {})
        self._loaded = {}
        self._signatures = {}
        self._versions = {}
        self._lock = threading.Lock()

    def versions(self, name):
        """The versions of `name`, oldest first (`[]` for a name that cannot be a model).

        Listed again whenever the model folder's modification time changes (a
        version folder renamed into place changes it); a listing is reused only
        once that time is `SETTLED_SECONDS` old, so an addition within the
        file system's timestamp granularity of the listing is not missed.
        """
        if not name or name in (".", "..") or "/" in name or "\\" in name or "\0" in name:
            return []
        root = self.model_dir / name
        try:
            stamp = os.stat(root).st_mtime_ns
        except OSError:
            return []
        cached = self._versions.get(name)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        found = versions(root)
        if time.time_ns() - stamp > SETTLED_SECONDS * 1e9:
            self._versions[name] = (stamp, found)
        return found

    def _not_found(self, name, request):
        known = zoo.names(self.model_dir)
        return ServingError(
            "NOT_FOUND", f"Servable not found for request: {request} (models under {self.model_dir}: "
            f"{', '.join(known) or 'none'})",
        )

    def resolve(self, name, version=None, label=None):
        """The version a `(name, version | label)` spec means: that one, the label's, or the newest.

        Raises:
            ServingError: `NOT_FOUND` (no such model or version), `INVALID_ARGUMENT`
                (an unknown label, or both a version and a label).
        """
        if not name:
            raise invalid("ModelSpec has no name specified.")
        if version is not None and label is not None:
            raise invalid(f"Both model version ({version}) and model version label ({label}) cannot be supplied.")
        if label is not None:
            version = self.labels.get(name, {}).get(label)
            if version is None:
                raise invalid(f"Unrecognized servable version label: {label}")
        found = self.versions(name)
        if version is None:
            if not found:
                raise self._not_found(name, f"Latest({name})")
            return found[-1]
        if version not in found:
            raise self._not_found(name, f"Specific({name}, {version})")
        return version

    def get(self, name, version):
        """The loaded `(model, call)` of one version; loads it on first use.

        Raises:
            ServingError: `NOT_FOUND`, the folder cannot be loaded (the message says why).
        """
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
                    raise ServingError(
                        "NOT_FOUND", f"Servable not found for request: Specific({name}, {version}): "
                        f"version {version} of {name!r} cannot be loaded: {error}",
                    ) from None
                batch = self.batching == "on" or (self.batching == "auto" and model.backend == "savedmodel")
                run = runner(model)
                call = Batcher(run, name=f"batcher-{name}-{version}") if batch else run
                entry = self._loaded[key] = (model, call)
                log.info("loaded %s version %s (%s%s)", name, version, model.backend,
                         ", batching" if batch else "")
        return entry

    def quick(self, name):
        """Whether every version of `name` is loaded and called directly (not through a `Batcher`)."""
        found = self.versions(name)
        return bool(found) and all(
            (entry := self._loaded.get((name, v))) is not None and not isinstance(entry[1], Batcher)
            for v in found
        )

    def preload(self):
        """Loads the newest version of every model; logs what it serves."""
        for name in zoo.names(self.model_dir):
            try:
                self.get(name, self.versions(name)[-1])
            except ServingError as error:
                log.warning("%s", error.message)

    def status(self, name, version=None):
        """`GetModelStatus`: `[(version, state, error_code, error_message)]`, newest first.

        A version label does not narrow it: `get_model_status_impl.cc` looks at
        `model_spec.version` only.

        Raises:
            ServingError: `NOT_FOUND` (`get_model_status_impl.cc`'s messages).
        """
        if not name:
            raise invalid("Missing model name in request.")
        found = self.versions(name)
        if version is not None:
            if version not in found:
                raise ServingError("NOT_FOUND", f"Could not find version {version} of model {name}")
            chosen = [version]
        elif not found:
            raise ServingError("NOT_FOUND", f"Could not find any versions of model {name}")
        else:
            chosen = found[::-1]
        entries = []
        for v in chosen:
            try:
                self.get(name, v)
                entries.append((v, "AVAILABLE", "OK", ""))
            except ServingError as error:
                entries.append((v, "END", "UNKNOWN", error.message))
        return entries

    def signature_defs(self, name, version):
        """Every signature def of a loaded version, as `signatures.read_signature_defs` gives them."""
        model, _ = self.get(name, version)
        key = (name, version)
        if key not in self._signatures:
            try:
                defs = signatures.read_signature_defs(model.path)
            except (OSError, ValueError):  # an ONNX-only folder: the zoo's view of the signature
                defs = {SIGNATURE: _signature_of(model)}
            self._signatures[key] = defs
        return self._signatures[key]

    def signature_inputs(self, name, version, signature):
        """The inputs of one signature; `INVALID_ARGUMENT` when the model has no such signature."""
        defs = self.signature_defs(name, version)
        signature = signature or SIGNATURE
        if signature not in defs:
            raise invalid(f'Serving signature name: "{signature}" not found in signature def')
        return defs[signature]["inputs"]

    def close(self):
        for _, call in self._loaded.values():
            if isinstance(call, Batcher):
                call.close()


def _tensor(dtype, dims, name):
    return {"dtype": dtype, "tensor_shape": {"dim": [{"size": str(d), "name": ""} for d in dims],
                                            "unknown_rank": False}, "name": name}


def _signature_of(model):
    """`serving_default` as the model's metadata describes it (a folder without `saved_model.pb`)."""
    shapes = {"probabilities": ("DT_FLOAT", [-1, len(model.class_names or ())]),
              "class_ids": ("DT_INT64", [-1]), "labels": ("DT_STRING", [-1]), "predictions": ("DT_FLOAT", [-1])}
    dtypes = {"float32": "DT_FLOAT", "string": "DT_STRING"}
    return {
        "inputs": {name: _tensor(dtypes[dtype], shape, f"{SIGNATURE}_{name}:0")
                   for name, (dtype, shape) in sorted(model.signature_inputs.items())},
        "outputs": {o: _tensor(*shapes[o], f"StatefulPartitionedCall:{i}") for i, o in enumerate(model.output_names)},
        "method_name": "tensorflow/serving/predict",
        "defaults": {},
    }


def method_error(signature, method):
    """What TensorFlow Serving answers `Classify`/`Regress` with on a predict signature.

    `classifier.cc` / `regressor.cc` `PreProcessClassification` /
    `PreProcessRegression` (the method-name check is off by default): one
    input named `inputs`, and one or two outputs `classes`/`scores`
    (classify) or one output `outputs` (regress).
    """
    inputs, outputs = signature["inputs"], signature["outputs"]
    kind = "classification" if method == "classify" else "regression"
    if len(inputs) != 1:
        return "Expected one input Tensor."
    if method == "classify" and len(outputs) not in (1, 2):
        return f"Expected one or two output Tensors, found {len(outputs)}"
    if method == "regress" and len(outputs) != 1:
        return "Expected one output Tensor."
    if "inputs" not in inputs:
        return f"No {kind} inputs found in SignatureDef: inputs {sorted(inputs)}, outputs {sorted(outputs)}"
    return (f"Expected {kind} signature outputs to be "
            f"{'classes and/or scores' if method == 'classify' else 'outputs'}; found {sorted(outputs)}")
