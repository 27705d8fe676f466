"""`model.onnx` beside the SavedModel: the same `serving_default` signature in ONNX.

The SavedModel stays the serving format; the ONNX file is there for fast
in-process prediction (`models.zoo` runs it with ONNX Runtime) and for apps
that should not import TensorFlow at all. It is converted from the SavedModel
just written, with tf2onnx's SavedModel loader (what `python -m tf2onnx.convert
--saved-model` runs), so it has the same inputs (`features`, or one per
column) and the same named outputs (`probabilities`, `class_ids`, `labels`, or
`predictions`). The loader freezes the variables and reads the initialized
string tables of `StringLookup` layers, which become `ai.onnx.ml`
`CategoryMapper` nodes.

tf2onnx can exit cleanly and still write a model that does not run, or does
not agree: each conversion is checked at once. ONNX Runtime runs the file on
the check rows (`check_feed`: held-out rows with missing values and a
category never seen in training) and its outputs must match the SavedModel's.

Conversion is best effort. `write` never raises: when tf2onnx or ONNX Runtime
is missing, an op has no ONNX form, or the check fails, no `model.onnx` is
written and the returned record says why, for `metadata.json`.
"""

from __future__ import annotations

import logging
import time

import numpy as np

from models.export.layout import INPUT, ONNX_FILE as FILENAME, SIGNATURE

OPSET = 17
"""ONNX opset of the exports; ONNX Runtime 1.16 and later run it."""

CHECK_ROWS = 16
RTOL, ATOL = 1e-4, 1e-5
"""Tolerances of the check made at export time, on float outputs."""


def convert(folder):
    """Converts the SavedModel in `folder` to an ONNX model with the same names.

    Args:
        folder: a SavedModel folder with a `serving_default` signature.

    Returns:
        The `onnx.ModelProto`: inputs and outputs named as the signature's.

    Raises:
        Exception: whatever tf2onnx raises for a graph it cannot convert.
    """
    from tf2onnx import convert as tf2onnx_convert
    from tf2onnx import tf_loader

    with _Captured("tf2onnx") as problems, _Captured("tensorflow"):
        graph_def, inputs, outputs, tables, renames = tf_loader.from_saved_model(
            str(folder), None, None, tag="serve", signatures=[SIGNATURE],
            return_initialized_tables=True, return_tensors_to_rename=True,
        )
        # `_convert_common` is the step the tf2onnx command line and `from_function`
        # share; it is the public way's only door for the tables read above.
        proto, _ = tf2onnx_convert._convert_common(
            graph_def, name=SIGNATURE, opset=OPSET, input_names=inputs, output_names=outputs,
            initialized_tables=tables, tensors_to_rename=renames,
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


def random_feed(specs, seed=0):
    """Check rows for a signature without data at hand: normal values, a NaN row, text."""
    rng = np.random.default_rng(seed)
    feed = {}
    for name, (dtype, shape) in specs.items():
        if dtype == "string":
            feed[name] = np.array(["a", "b", ""] * (CHECK_ROWS // 3) + ["z"], dtype=object)
        else:
            width = [shape[1]] if len(shape) == 2 else []
            values = rng.normal(size=[CHECK_ROWS, *width]).astype(np.float32)
            values[0] = np.nan
            feed[name] = values
    return feed


def check(path, signature, feed):
    """Runs the ONNX file and the SavedModel `signature` on `feed`; returns the largest difference.

    Raises:
        ValueError: a float output differs by more than the tolerances, or the
            names or the other outputs differ.
    """
    import onnxruntime
    import tensorflow as tf

    expected = {k: v.numpy() for k, v in signature(**{
        k: tf.constant(v.tolist() if v.dtype == object else v) for k, v in feed.items()}).items()}
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    if sorted(names) != sorted(expected):
        raise ValueError(f"ONNX outputs {sorted(names)} differ from the signature's {sorted(expected)}")
    got = dict(zip(names, session.run(names, feed)))
    largest = 0.0
    for name, want in expected.items():
        if want.dtype.kind == "f":
            if not np.allclose(got[name], want, rtol=RTOL, atol=ATOL):
                raise ValueError(f"ONNX output {name!r} differs from the SavedModel's beyond "
                                 f"rtol={RTOL}, atol={ATOL} on the check rows")
            largest = max(largest, float(np.max(np.abs(got[name] - want), initial=0.0)))
        elif want.dtype.kind in "SO":
            if [w.decode() if isinstance(w, bytes) else w for w in want] != list(got[name]):
                raise ValueError(f"ONNX output {name!r} differs from the SavedModel's")
        elif not np.array_equal(got[name], want):
            raise ValueError(f"ONNX output {name!r} differs from the SavedModel's")
    return largest


def write(folder, check_feed=None):
    """Writes `folder/model.onnx` from the SavedModel in `folder`; returns the `metadata.json` record.

    Never raises for a model that cannot be converted: the export goes on
    without the file, and the record's `error` says why.

    Args:
        folder: the version folder being written, its SavedModel already in it.
        check_feed: `{input_name: array}` (or the `features` matrix) the ONNX
            file must answer as the SavedModel does. Defaults to `None`:
            `random_feed` of the signature.

    Returns:
        `{"file": "model.onnx", "opset", "tf2onnx_version", "onnxruntime_version",
        "max_abs_diff", "check_rows", "seconds"}`, or `{"file": None, "error": "...", "seconds"}`.
    """
    started = time.perf_counter()
    target = folder / FILENAME
    try:
        import onnxruntime
        import tensorflow as tf
        import tf2onnx

        signature = tf.saved_model.load(str(folder)).signatures[SIGNATURE]
        specs = {name: (spec.dtype.name, spec.shape.as_list())
                 for name, spec in signature.structured_input_signature[1].items()}
        if check_feed is None:
            check_feed = random_feed(specs)
        elif not isinstance(check_feed, dict):
            check_feed = {INPUT: check_feed}
        proto = convert(folder)
        target.write_bytes(proto.SerializeToString())
        largest = check(target, signature, check_feed)
        return {
            "file": FILENAME, "opset": OPSET, "tf2onnx_version": tf2onnx.__version__,
            "onnxruntime_version": onnxruntime.__version__, "max_abs_diff": largest,
            "check_rows": len(next(iter(check_feed.values()))),
            "seconds": round(time.perf_counter() - started, 3),
        }
    except Exception as error:  # best effort: the SavedModel is the export that counts
        target.unlink(missing_ok=True)
        first_line = (str(error).strip().splitlines() or [""])[0]
        return {
            "file": None, "error": f"{type(error).__name__}: {first_line}",
            "seconds": round(time.perf_counter() - started, 3),
        }
