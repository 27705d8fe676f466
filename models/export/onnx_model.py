"""`model.onnx` beside the SavedModel: the same `serving_default` signature in ONNX.

The SavedModel stays the serving format; the ONNX file is there for fast
in-process prediction (`models.zoo` runs it with ONNX Runtime) and for apps
that should not import TensorFlow at all. It is converted from the very
function and state the SavedModel was just written from (no second trace, no
reload), the way tf2onnx's SavedModel loader (what `python -m tf2onnx.convert
--saved-model` runs) converts a signature: the variables frozen into
constants, the initialized string tables of `StringLookup` layers read, which
become `ai.onnx.ml` `CategoryMapper` nodes. So it has the same inputs
(`features`, or one per column) and the same named outputs (`probabilities`,
`class_ids`, `labels`, or `predictions`). `write(folder)` alone loads the
SavedModel in `folder` and converts that.

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

NOT_APPLICABLE = ("remove_redundant_upsample", "const_dequantize_optimizer", "loop_optimizer",
                  "global_pool_optimizer", "q_dq_optimizer", "einsum_optimizer")
"""tf2onnx's graph optimizers for ops the exported models never have (Upsample,
quantization, Loop, global pooling, Einsum); the conversion leaves them out.
tf2onnx copies the whole graph before each optimizer it runs, on every pass,
so each costs time even where it finds nothing to do; without these six the
file is the same (`tests/test_onnx_export.py`).
"""


def convert(servable):
    """Converts a serving function and the state it reads to an ONNX model with the same names.

    Args:
        servable: a trackable with the `serving_default` concrete function as
            `.signature` (`models.export.savedmodel.servable`, as written), or
            a loaded SavedModel (`tf.saved_model.load`).

    Returns:
        The `onnx.ModelProto`: inputs and outputs named as the signature's.

    Raises:
        Exception: whatever tf2onnx raises for a graph it cannot convert.
    """
    import tensorflow as tf
    from tf2onnx import convert as tf2onnx_convert
    from tf2onnx import optimizer, tf_loader

    function = signature_function(servable)
    # What tf2onnx's SavedModel loader does with a signature's function: the
    # graph's own inputs and outputs, renamed to the signature's names.
    specs = tf.nest.flatten(function.structured_input_signature)
    placeholders = function.inputs[:len(specs)]  # the captured state's come after them
    renames = {t.name: spec.name for t, spec in zip(placeholders, specs)}
    outputs = [t.name for t in function.outputs]
    renames.update(zip(outputs, sorted(function.structured_outputs)))
    inputs = [t.name for t in placeholders]
    with _Captured("tf2onnx") as problems, _Captured("tensorflow"):
        # Freezes the variables and reads the tables' contents, as
        # `tf_loader.from_saved_model` does for a loaded SavedModel.
        graph_def, tables = tf_loader.from_trackable(servable, function, inputs, outputs, False)
        # `_convert_common` is the step the tf2onnx command line and `from_function`
        # share; it is the public way's only door for the tables read above.
        proto, _ = tf2onnx_convert._convert_common(
            graph_def, name=SIGNATURE, opset=OPSET, input_names=inputs, output_names=outputs,
            initialized_tables=tables, tensors_to_rename=renames,
            optimizers=_applicable(optimizer),
        )
    unsupported = [p for p in problems if p.startswith("Unsupported ops")]
    if unsupported:  # tf2onnx logs these and writes the ops through unconverted
        raise ValueError(f"tf2onnx cannot convert this model: {unsupported[0]}")
    return proto


def _applicable(optimizer):
    """tf2onnx's optimizers in its order, less `NOT_APPLICABLE`; `None` (all) if it lists none.

    tf2onnx has no public list of its optimizers: `_get_optimizers` is what its
    own `optimize_graph` reads.
    """
    every = getattr(optimizer, "_get_optimizers", lambda: None)()
    if not isinstance(every, dict):
        return None
    return type(every)((name, make) for name, make in every.items() if name not in NOT_APPLICABLE)


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


def signature_function(servable):
    """The `serving_default` concrete function of a `servable` or of a loaded SavedModel."""
    return getattr(servable, "signature", None) or servable.signatures[SIGNATURE]


def outputs(function, feed):
    """`function`'s outputs on `feed` (`{input name: array}`), as NumPy arrays.

    `function` is a SavedModel signature's (inputs by keyword) or the traced
    one a `servable` holds (one argument: the matrix, or a dict of columns).
    """
    import tensorflow as tf

    tensors = {k: tf.constant(v.tolist() if v.dtype == object else v) for k, v in feed.items()}
    args, _ = function.structured_input_signature
    if args:
        (spec,) = args
        result = function(tensors if isinstance(spec, dict) else tensors[spec.name])
    else:
        result = function(**tensors)
    return {k: v.numpy() for k, v in result.items()}


def check(path, expected, feed):
    """Runs the ONNX file on `feed` and compares with `expected`; returns the largest difference.

    Args:
        path: the ONNX file.
        expected: the SavedModel signature's outputs on `feed` (`outputs`).
        feed: `{input_name: array}`.

    Raises:
        ValueError: a float output differs by more than the tolerances, or the
            names or the other outputs differ.
    """
    import onnxruntime

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


def write(folder, check_feed=None, *, servable=None):
    """Writes `folder/model.onnx` beside the SavedModel in `folder`; returns the `metadata.json` record.

    Never raises for a model that cannot be converted: the export goes on
    without the file, and the record's `error` says why.

    Args:
        folder: the version folder being written, its SavedModel already in it.
        check_feed: `{input_name: array}` (or the `features` matrix) the ONNX
            file must answer as the SavedModel does. Defaults to `None`:
            `random_feed` of the signature.
        servable: what the SavedModel was written from
            (`models.export.savedmodel.write_savedmodel`'s return value): its
            function is converted as it is, in memory. Defaults to `None`:
            the SavedModel in `folder` is loaded and converted.

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

        if servable is None:
            servable = tf.saved_model.load(str(folder))
        function = signature_function(servable)
        specs = {spec.name: (spec.dtype.name, spec.shape.as_list())
                 for spec in tf.nest.flatten(function.structured_input_signature)}
        if check_feed is None:
            check_feed = random_feed(specs)
        elif not isinstance(check_feed, dict):
            check_feed = {INPUT: check_feed}
        expected = outputs(function, check_feed)  # first: tf2onnx's freezing leaves the
        proto = convert(servable)                 # function's table captures unusable
        target.write_bytes(proto.SerializeToString())
        largest = check(target, expected, check_feed)
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
