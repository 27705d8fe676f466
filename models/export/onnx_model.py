"""`model.onnx` beside the SavedModel: the same `serving_default` function in ONNX.

The SavedModel stays the serving format; the ONNX file is there for fast
in-process prediction (`models.zoo` runs it with ONNX Runtime) and for apps
that should not import TensorFlow at all. It is the serving function of
`models.export.savedmodel.serving_function` converted with tf2onnx, so it has the same
input (`features`, float32 `[None, n_features]`) and the same named outputs
(`probabilities`, `class_ids`, `labels`, or `predictions`).

Keras 3 models do not go through tf2onnx's `from_keras`, and `from_function`
leaves the constants a Keras `Normalization` layer captures as graph inputs.
So the serving function is traced, its variables and captured tensors are
frozen into constants (`models.tensorflow_internals.freeze`), and that graph is
converted with `from_graph_def`.
Each conversion is checked at once: ONNX Runtime runs the file on a few rows
and its outputs must match TensorFlow's.

Conversion is best effort. `write` never raises: when tf2onnx or ONNX Runtime
is missing, an op has no ONNX form, or the check fails, no `model.onnx` is
written and the returned record says why, for `metadata.json`.
"""

from __future__ import annotations

import logging
import time

import numpy as np

from models.export.layout import INPUT, ONNX_FILE as FILENAME

OPSET = 17
"""ONNX opset of the exports; ONNX Runtime 1.16 and later run it."""

CHECK_ROWS = 16
RTOL, ATOL = 1e-4, 1e-5
"""Tolerances of the check made at export time, on float outputs."""


def convert(serve):
    """Converts a `serving_function` to an ONNX model with the same names.

    Args:
        serve: a `tf.function` with one input signature (`features`) returning
            a dict of named tensors, such as `models.export.serving_function`'s.

    Returns:
        The `onnx.ModelProto`: input `features`, outputs named as `serve`'s.

    Raises:
        Exception: whatever tf2onnx raises for a graph it cannot convert.
    """
    import tensorflow as tf
    import tf2onnx

    from models import tensorflow_internals

    concrete = serve.get_concrete_function()
    names = sorted(concrete.structured_outputs)  # the frozen outputs follow sorted keys
    frozen = tensorflow_internals.freeze(concrete)
    inputs = [t.name for t in frozen.inputs if t.dtype != tf.resource]
    outputs = [t.name for t in frozen.outputs]
    if len(inputs) != 1 or len(outputs) != len(names):
        raise ValueError(
            f"The serving function must take one tensor and return named tensors. "
            f"Received: inputs={inputs}, outputs={outputs}"
        )
    with _Captured("tf2onnx") as problems, _Captured("tensorflow"):
        proto, _ = tf2onnx.convert.from_graph_def(
            frozen.graph.as_graph_def(), input_names=inputs, output_names=outputs, opset=OPSET,
            tensors_to_rename={inputs[0]: INPUT, **dict(zip(outputs, names))},
        )
    unsupported = [p for p in problems if p.startswith("Unsupported ops")]
    if unsupported:  # tf2onnx logs these and writes the ops through unconverted
        raise ValueError(f"tf2onnx cannot convert this model: {unsupported[0]}")
    return proto


class _Captured(logging.Handler):
    """Keeps a logger's warnings and errors in a list instead of printing them."""

    def __init__(self, name):
        super().__init__(logging.WARNING)
        self.logger = logging.getLogger(name)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())

    def __enter__(self):
        self._saved = self.logger.handlers[:], self.logger.propagate, self.logger.level
        self.logger.handlers[:] = [self]
        self.logger.propagate = False
        self.logger.setLevel(logging.WARNING)
        return self.messages

    def __exit__(self, *exc):
        self.logger.handlers[:], self.logger.propagate, level = self._saved
        self.logger.setLevel(level)


def check(path, serve, n_features, seed=0):
    """Runs the ONNX file and `serve` on the same rows; returns the largest difference.

    Raises:
        ValueError: a float output differs by more than the tolerances, or the
            names or integer outputs differ.
    """
    import onnxruntime

    rows = np.random.default_rng(seed).normal(size=(CHECK_ROWS, n_features)).astype(np.float32)
    expected = {k: np.asarray(v) for k, v in serve(rows).items()}
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    if sorted(names) != sorted(expected):
        raise ValueError(f"ONNX outputs {sorted(names)} differ from the signature's {sorted(expected)}")
    got = dict(zip(names, session.run(names, {INPUT: rows})))
    largest = 0.0
    for name, want in expected.items():
        if want.dtype.kind == "f":
            if not np.allclose(got[name], want, rtol=RTOL, atol=ATOL):
                raise ValueError(f"ONNX output {name!r} differs from TensorFlow's beyond rtol={RTOL}")
            largest = max(largest, float(np.max(np.abs(got[name] - want), initial=0.0)))
    return largest


def write(serve, folder, n_features):
    """Writes `folder/model.onnx` for a serving function; returns the record for `metadata.json`.

    Never raises for a model that cannot be converted: the export goes on
    without the file, and the record's `error` says why.

    Args:
        serve: the export's `serving_default` function
            (`models.export.savedmodel.serving_function`).
        folder: the version folder being written.
        n_features: the width of its `features` input.

    Returns:
        `{"file": "model.onnx", "opset", "tf2onnx_version", "onnxruntime_version",
        "max_abs_diff", "seconds"}`, or `{"file": None, "error": "...", "seconds"}`.
    """
    started = time.perf_counter()
    target = folder / FILENAME
    try:
        import onnxruntime
        import tf2onnx

        proto = convert(serve)
        target.write_bytes(proto.SerializeToString())
        largest = check(target, serve, int(n_features))
        return {
            "file": FILENAME, "opset": OPSET, "tf2onnx_version": tf2onnx.__version__,
            "onnxruntime_version": onnxruntime.__version__, "max_abs_diff": largest,
            "seconds": round(time.perf_counter() - started, 3),
        }
    except Exception as error:  # best effort: the SavedModel is the export that counts
        target.unlink(missing_ok=True)
        first_line = (str(error).strip().splitlines() or [""])[0]
        return {
            "file": None, "error": f"{type(error).__name__}: {first_line}",
            "seconds": round(time.perf_counter() - started, 3),
        }
