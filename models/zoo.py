"""Exported models in an app: list them, load one, predict.

A recipe's export (`saved_models/NAME/VERSION/`, see `models.export.layout`) is all
an app needs: no recipe code, no training code, no `model.predict`.

- `names(model_dir)`: the models there;
- `load(name_or_path, version=None, model_dir="saved_models")`: a `Model`,
  newest version unless `version` says otherwise; a path to a model folder or
  to one version folder works too;
- `Model.predict(rows)`: labels (classification) or values (regression);
  `Model.predict_proba(rows)`: class probabilities (classification only);
  `Model.metadata`: the export's `metadata.json`.

`rows` may be a list of lists, a NumPy array `[rows, features]`, a list of
`{feature_name: value}` dicts, or a pandas `DataFrame`; raw values, as in the
training data: numbers, text for a categorical column, and `None`, NaN or `""`
(or a spelling such as `"NA"`, `models.data.tables.MISSING`) for a missing
value. An export of a table with a categorical column takes one named input
per column (`Model.signature_inputs`); `Model.feed(rows)` builds them.

Two runtimes, one interface. When the version folder has `model.onnx` and
ONNX Runtime is installed, `Model` runs the ONNX file: TensorFlow is never
imported, a fresh process starts in a fraction of a second, and one row costs
microseconds. Otherwise it calls the SavedModel's `serving_default` signature
directly (TensorFlow, no Keras). Both give the signature's named outputs.

Every load, here and in `models.serve`, goes through `load_folder`: the one
place that reads a version folder and decides whether it can be trusted. A
damaged folder (a truncated `metadata.json`, an empty or corrupt `model.onnx`,
no `variables/`, a `saved_model.pb` that is not one) raises `ModelLoadError`
naming the file, never a runtime's own exception. Under `backend="auto"` a
`model.onnx` that cannot be loaded is skipped for the SavedModel beside it, with
a warning naming the file: `Model.backend` is then `"savedmodel"` and
`Model.fallback` says why.

Example:

>>> from models import zoo
>>> zoo.names()                                     # doctest: +SKIP
['binary-sigmoid', 'multiclass-softmax']
>>> model = zoo.load("multiclass-softmax")          # doctest: +SKIP
>>> model.predict([[5.1, 3.5, 1.4, 0.2]])           # doctest: +SKIP
array(['setosa'], dtype=object)
"""

from __future__ import annotations

import json
import math
import numbers
import os
import warnings
from pathlib import Path

import numpy as np

from models.export.layout import (
    FLOAT32_MAX,
    MISSING,
    INPUT,
    METADATA_FILE,
    ONNX_FILE,
    OUTPUTS,
    SAVEDMODEL_FILE,
    SIGNATURE,
    versions,
)


BACKENDS = ("auto", "onnx", "savedmodel")


class ModelNotFoundError(FileNotFoundError):
    """No model of that name, no such version, or no folder at that path."""


class ModelLoadError(ValueError):
    """A folder that is there but is not a usable export; the message names it."""


def names(model_dir="saved_models"):
    """The models under `model_dir`: folders holding at least one version folder.

    Args:
        model_dir: the export root. Defaults to `"saved_models"`.

    Returns:
        The sorted model names (`[]` when `model_dir` does not exist).
    """
    root = Path(model_dir)
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if not p.name.startswith(".") and versions(p))


def load(name_or_path, version=None, model_dir="saved_models", *, backend="auto"):
    """Loads an exported model, ready to predict.

    Args:
        name_or_path: a model's name under `model_dir`, or a path (a `Path`,
            or a string with a `/`) to a model folder or to one version folder.
        version: the version to load. Defaults to `None`, the newest.
        model_dir: the export root names are looked up in. Defaults to `"saved_models"`.
        backend: `"onnx"` (ONNX Runtime on `model.onnx`), `"savedmodel"` (the
            SavedModel's signature, TensorFlow) or `"auto"`: ONNX when the folder
            has it and ONNX Runtime is installed, else the SavedModel.
            Defaults to `"auto"`.

    Returns:
        A `Model`.

    Raises:
        ValueError: a bad argument.
        ModelNotFoundError: no such model, version or path.
        ModelLoadError: the folder is not a usable export (the message names it).
    """
    integral = isinstance(version, numbers.Integral) and not isinstance(version, bool)
    if version is not None and not (integral and version >= 1):
        raise ValueError(f"`version` must be an integer >= 1 or None. Received: version={version!r}")
    if backend not in BACKENDS:
        raise ValueError(f"`backend` must be one of {', '.join(BACKENDS)}. Received: backend={backend!r}")
    return load_folder(resolve(name_or_path, version, model_dir), backend=backend)


def resolve(name_or_path, version=None, model_dir="saved_models"):
    """The version folder `load` would read, without loading it.

    Raises:
        ModelNotFoundError: no such model, version or path.
    """
    if isinstance(name_or_path, os.PathLike) or (
        isinstance(name_or_path, str) and ("/" in name_or_path or os.sep in name_or_path)
    ):
        path = Path(name_or_path)
        if not path.is_dir():
            raise ModelNotFoundError(f"No model folder at {path}: it does not exist or is not a folder.")
        if (path / METADATA_FILE).exists() or (path / SAVEDMODEL_FILE).exists():
            if version is not None and path.name != str(version):
                raise ModelNotFoundError(
                    f"{path} is one version folder, not version {version}; pass the model's "
                    f"folder ({path.parent}) to choose a version."
                )
            return path
        root = path
    elif isinstance(name_or_path, str) and name_or_path and name_or_path not in (".", ".."):
        root = Path(model_dir) / name_or_path
        if not versions(root):
            known = names(model_dir)
            there = f"models there: {', '.join(known)}" if known else "it holds no models"
            raise ModelNotFoundError(
                f"No model {name_or_path!r} under {model_dir} ({there}). Train and export one "
                f"with `python -m recipes.run {name_or_path}`, or pass `model_dir=`, or a path "
                "(with a `/`, e.g. `./my_model`)."
            )
    else:
        raise ValueError(
            f"`name_or_path` must be a model name or a path. Received: name_or_path={name_or_path!r}"
        )
    available = versions(root)
    if not available:
        raise ModelNotFoundError(f"{root} holds no version folders (1/, 2/, ...): nothing to load.")
    if version is None:
        return root / str(available[-1])
    if version not in available:
        raise ModelNotFoundError(
            f"{root} has no version {version} (versions: {', '.join(map(str, available))})."
        )
    return root / str(version)


def load_folder(folder, *, backend="auto"):
    """Loads one version folder: the one place that reads an export.

    Reads and checks `metadata.json`, picks the runtime, and checks that the
    model takes the inputs the metadata names (`features` of its width, or one
    input per column) and returns the signature's outputs for its task.

    Args:
        folder: a version folder (`saved_models/NAME/VERSION`).
        backend: `"auto"`, `"onnx"` or `"savedmodel"` (see `load`). Defaults to `"auto"`.

    Returns:
        A `Model`.

    Raises:
        ModelNotFoundError: no folder there.
        ModelLoadError: the folder lacks a file, the signature, or sane metadata.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ModelNotFoundError(f"No model folder at {folder}.")
    metadata = _read_metadata(folder)
    expected = OUTPUTS[metadata["task"]]
    inputs_wanted = _expected_inputs(metadata)
    has_onnx = (folder / ONNX_FILE).is_file()
    chosen = backend
    if backend == "auto":
        chosen = "onnx" if has_onnx and _onnxruntime_installed() else "savedmodel"
    fallback = None
    if chosen == "onnx":
        if not has_onnx:
            raise ModelLoadError(
                f"{folder} has no {ONNX_FILE} (its metadata's `onnx` field says why, if the "
                "export tried); load it with backend='savedmodel'."
            )
        try:
            runner = _OnnxRunner(folder / ONNX_FILE, folder, inputs_wanted, expected)
        except ModelLoadError as error:
            if backend != "auto" or not (folder / SAVEDMODEL_FILE).is_file():
                raise
            onnx_error, chosen = error, "savedmodel"
            fallback = f"{error} Running the SavedModel beside it instead."
    if chosen == "savedmodel":
        if not (folder / SAVEDMODEL_FILE).is_file():
            raise ModelLoadError(
                f"{folder} has no {SAVEDMODEL_FILE}: it is not a SavedModel export. "
                "Point at a version folder written by `python -m recipes.run`."
            )
        try:
            runner = _SavedModelRunner(folder, inputs_wanted, expected)
        except ModelLoadError as error:
            if fallback is None:
                raise
            raise ModelLoadError(f"{onnx_error} The SavedModel beside it cannot be loaded "
                                 f"either: {error}") from None
        if fallback is not None:
            warnings.warn(fallback, RuntimeWarning, stacklevel=2)
    return Model(folder, metadata, runner, chosen, fallback=fallback)


def _read_metadata(folder):
    path = folder / METADATA_FILE
    if not path.is_file():
        raise ModelLoadError(
            f"{folder} has no {METADATA_FILE}, so its features and classes are unknown. "
            "Point at a version folder written by `python -m recipes.run`."
        )
    try:
        metadata = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelLoadError(f"{path} cannot be read as JSON ({error}): it is damaged or "
                             "truncated. Re-export the model.") from None
    problem = None
    if not isinstance(metadata, dict):
        problem = "it is not a JSON object"
    elif metadata.get("task") not in OUTPUTS:
        problem = f"its `task` is {metadata.get('task')!r}, not one of {', '.join(OUTPUTS)}"
    elif not (isinstance(metadata.get("feature_names"), list) and metadata["feature_names"]
              and all(isinstance(f, str) for f in metadata["feature_names"])):
        problem = "its `feature_names` is not a non-empty list of strings"
    elif metadata.get("inputs") == "columns" and not (
        isinstance(metadata.get("features"), list)
        and [f.get("name") if isinstance(f, dict) else None for f in metadata["features"]]
        == metadata["feature_names"]
        and all(isinstance(f.get("input"), str) and f.get("kind") in ("numeric", "categorical")
                and (f["kind"] == "numeric" or isinstance(f.get("vocabulary"), list))
                for f in metadata["features"])
    ):
        problem = ("its `features` does not describe each of its `feature_names` (name, input, "
                   "kind, and a categorical column's vocabulary)")
    elif metadata["task"] != "regression" and not (
        isinstance(metadata.get("class_names"), list) and len(metadata["class_names"]) >= 2
    ):
        problem = "a classifier's `class_names` must list at least 2 classes"
    if problem:
        raise ModelLoadError(f"{path} is not an export's metadata: {problem}.")
    return metadata


def _expected_inputs(metadata):
    """The inputs the metadata promises: `{name: (dtype, shape)}`."""
    if metadata.get("inputs") == "columns":
        return {f["input"]: ("string" if f["kind"] == "categorical" else "float32", [-1])
                for f in metadata["features"]}
    return {INPUT: ("float32", [-1, len(metadata["feature_names"])])}


def _onnxruntime_installed():
    import importlib.util

    return importlib.util.find_spec("onnxruntime") is not None


class _OnnxRunner:
    """Runs `model.onnx` with ONNX Runtime: float32 rows in, named NumPy outputs out."""

    def __init__(self, path, folder, inputs_wanted, expected):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1  # tiny graphs: a thread pool costs more than it saves
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            self.session = onnxruntime.InferenceSession(
                str(path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as error:  # ONNX Runtime raises its own exception types
            raise ModelLoadError(
                f"{path} is damaged: ONNX Runtime cannot load it "
                f"({_runtime_reason(error, path)}). Re-export the model, or load it with "
                "backend='savedmodel'."
            ) from None
        inputs = {i.name: ("string" if "string" in i.type else "float32", i.shape)
                  for i in self.session.get_inputs()}
        self.names = [o.name for o in self.session.get_outputs()]
        _check_signature(folder, ONNX_FILE, inputs, self.names, inputs_wanted, expected)

    def __call__(self, feed):
        return dict(zip(self.names, self.session.run(self.names, feed)))


class _SavedModelRunner:
    """Calls the SavedModel's `serving_default` signature (TensorFlow, no Keras)."""

    def __init__(self, folder, inputs_wanted, expected):
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        import tensorflow as tf

        self._tf = tf
        variables = folder / "variables"
        if not (variables / "variables.index").is_file():
            raise ModelLoadError(
                f"{variables}/ is missing or lacks variables.index: the SavedModel's weights "
                "are gone. Re-export the model."
            )
        try:
            loaded = tf.saved_model.load(str(folder))
        except Exception as error:  # TensorFlow raises many types for a bad SavedModel
            text = _runtime_reason(error, folder)
            # it reads saved_model.pb (a parse error), then the weights in variables/
            damaged = folder / SAVEDMODEL_FILE if "parse" in str(error).lower() else variables
            raise ModelLoadError(
                f"{damaged} is damaged: TensorFlow cannot load the SavedModel ({text}). "
                "Re-export the model."
            ) from None
        if SIGNATURE not in loaded.signatures:
            raise ModelLoadError(
                f"{folder} has no `{SIGNATURE}` signature (it has: "
                f"{', '.join(loaded.signatures) or 'none'}); export it with `models.export`."
            )
        self._loaded = loaded  # keeps the signature's variables alive
        self.function = loaded.signatures[SIGNATURE]
        specs = self.function.structured_input_signature[1]
        inputs = {name: (spec.dtype.name, spec.shape.as_list()) for name, spec in specs.items()}
        self.names = sorted(self.function.structured_outputs)
        _check_signature(folder, SIGNATURE, inputs, self.names, inputs_wanted, expected)

    def __call__(self, feed):
        constant = self._tf.constant
        outputs = {k: v.numpy() for k, v in self.function(**{
            name: constant(v.tolist() if v.dtype == object else v) for name, v in feed.items()
        }).items()}
        if "labels" in outputs:
            outputs["labels"] = np.array([b.decode("utf-8") for b in outputs["labels"]], dtype=object)
        return outputs


def _runtime_reason(error, path):
    """A runtime's load error in one short line, without the path it repeats."""
    text = " ".join(str(getattr(error, "message", error)).split())
    text = text.rpartition("failed:")[2] or text  # ONNX Runtime: "... Load model from P failed:WHY"
    text = text.rpartition("': ")[2].strip().rstrip(".")  # TensorFlow: "Cannot parse file b'P': WHY"
    if path.is_file() and path.stat().st_size == 0:
        text = f"the file is empty, 0 bytes; {text}"
    return text if len(text) <= 200 else text[:197] + "..."


def _check_signature(folder, what, inputs, outputs, expected_inputs, expected):
    """Checks a model's inputs (names, types, ranks, the matrix's width) and output names."""
    def same(got, want):
        (got_type, got_shape), (want_type, want_shape) = got, want
        return (got_type == want_type and got_shape is not None and len(got_shape) == len(want_shape)
                and (len(want_shape) == 1 or got_shape[1] == want_shape[1]))

    if sorted(inputs) != sorted(expected_inputs) or not all(
            same(inputs[k], expected_inputs[k]) for k in expected_inputs):
        want = ", ".join(f"`{k}` {t} {shape}" for k, (t, shape) in expected_inputs.items())
        raise ModelLoadError(
            f"The {what} of {folder} does not take the inputs its metadata describes ({want}; "
            f"it takes: {inputs}); the folder's files do not belong together. Re-export the model."
        )
    if sorted(outputs) != sorted(expected):
        raise ModelLoadError(
            f"The {what} of {folder} returns {sorted(outputs)}, not the outputs of its task "
            f"({', '.join(expected)}). Re-export the model."
        )


class Model:
    """An exported model, ready to predict; made by `load`.

    Attributes:
        path: the version folder.
        name: the model's name (its folder's parent's name).
        version: the version number.
        metadata: the export's `metadata.json` as a dict.
        task: `binary`, `multiclass` or `regression`.
        feature_names: the input columns, in order.
        class_names: the classes (classification), else `None`.
        backend: `"onnx"` or `"savedmodel"`, the runtime in use.
        fallback: why `backend` is `"savedmodel"` under `backend="auto"` though the
            folder has a `model.onnx` (which could not be loaded), else `None`.
        output_names: the signature's output names, sorted.
        signature_inputs: `{input_name: (dtype, shape)}`: `{"features":
            ("float32", [-1, n])}`, or per column `("float32" | "string", [-1])`.
        missing_ok: whether a missing value (`None`, NaN, `""`) may be sent: the
            export imputes it (every export but those written before missing
            values were handled).
    """

    def __init__(self, path, metadata, runner, backend, *, fallback=None):
        self.path = Path(path)
        self.name = self.path.parent.name if self.path.name.isdigit() else self.path.name
        self.version = int(self.path.name) if self.path.name.isdigit() else metadata.get("version")
        self.metadata = metadata
        self.task = metadata["task"]
        self.feature_names = list(metadata["feature_names"])
        self.class_names = metadata.get("class_names") if self.task != "regression" else None
        self.backend = backend
        self.fallback = fallback
        self.output_names = list(OUTPUTS[self.task])
        self.signature_inputs = _expected_inputs(metadata)
        self.missing_ok = "features" in metadata
        self._run = runner
        self._index = {name: i for i, name in enumerate(self.feature_names)}
        self._columns = None
        if metadata.get("inputs") == "columns":
            self._columns = [_ColumnReader(f) for f in metadata["features"]]
            self._index.update({f["input"]: i for i, f in enumerate(metadata["features"])})

    def __repr__(self):
        return f"<zoo.Model {self.name} v{self.version} {self.task} ({self.backend}) at {self.path}>"

    def predict(self, rows):
        """Labels (classification, an object array of `str`) or values (regression, float32).

        Raises:
            ValueError: rows the model cannot take (see `feed`).
        """
        outputs = self._run(self.feed(rows))
        return outputs["predictions"] if self.task == "regression" else outputs["labels"]

    def predict_proba(self, rows):
        """Class probabilities, float32 `[rows, n_classes]` (binary: 2 columns), in `class_names` order.

        Raises:
            ValueError: a regression model, or rows the model cannot take.
        """
        if self.task == "regression":
            raise ValueError(
                f"{self.name} is a regression model: it predicts values, not class "
                "probabilities. Use `predict(rows)`."
            )
        return self._run(self.feed(rows))["probabilities"]

    def outputs(self, rows):
        """All of the signature's named outputs, as NumPy arrays."""
        return self._run(self.feed(rows))

    def run(self, feed):
        """The signature's outputs for inputs that are already checked (`feed`'s result).

        A float32 `[rows, features]` array is taken as the `features` input.
        """
        if not isinstance(feed, dict):
            feed = {INPUT: feed}
        return self._run(feed)

    def feed(self, rows):
        """Checks `rows` and returns them as the signature's inputs.

        Args:
            rows: a list of lists, a 2-D NumPy array, a list of
                `{feature_name: value}` dicts, or a pandas `DataFrame`, with raw
                values (see the module docstring).

        Returns:
            `{input_name: array}`: `{"features": float32 [rows, features]}`, or
            for a table with a categorical column one rank-1 array per column
            (float32, or an object array of `str` for a categorical one).

        Raises:
            ValueError: no rows, a row of the wrong width, a missing or unknown
                column, a value of the wrong kind (text for a number, a number
                for a category) or out of range; the message names the row and
                the column.
        """
        if self._columns is None:
            return {INPUT: self.features(rows)}
        columns = self._column_values(rows)
        return {reader.input: reader(values) for reader, values in zip(self._columns, columns)}

    def features(self, rows):
        """Checks `rows` and returns the float32 `[rows, features]` array of a `features` model.

        Raises:
            ValueError: as `feed`; also for a model that takes one input per
                column (use `feed`).
        """
        if self._columns is not None:
            raise ValueError(
                f"{self.name} takes one input per column ({_listing(list(self.signature_inputs))}), "
                "not a `features` matrix: use `feed(rows)`."
            )
        width = len(self.feature_names)
        if _is_dataframe(rows):
            rows = np.column_stack([_as_float_column(self, c, v) for c, v in
                                    zip(self.feature_names, self._frame_columns(rows))])
        if isinstance(rows, np.ndarray):
            if rows.ndim != 2:
                raise ValueError(
                    f"`rows` must be 2-D [rows, {width}]; for one row pass [row] or "
                    f"x.reshape(1, -1). Received: an array of shape {rows.shape}"
                )
            if rows.dtype.kind in "biuf" and rows.shape[1] == width and len(rows):
                with np.errstate(over="ignore"):
                    x = np.ascontiguousarray(rows, dtype=np.float32)
                if self._acceptable(x):
                    return x
            return self.features(rows.tolist())
        rows = self._row_list(rows)
        try:  # all numbers: one conversion (None or text make an object array: checked below)
            x = np.array(rows)
        except ValueError:  # rows of different lengths
            x = None
        if x is not None and x.dtype.kind in "biuf" and x.ndim == 2 and x.shape[1] == width:
            with np.errstate(over="ignore"):
                x = x.astype(np.float32)
            if self._acceptable(x):
                return x
        return self._checked(rows)

    def _acceptable(self, x):
        """Finite values (NaN too, when missing values are imputed)."""
        return not np.isinf(x).any() if self.missing_ok else bool(np.isfinite(x).all())

    def _column_values(self, rows):
        """`rows` as one list (or array) of raw values per column, in `feature_names` order."""
        if _is_dataframe(rows):
            return self._frame_columns(rows)
        if isinstance(rows, np.ndarray):
            if rows.ndim != 2:
                raise ValueError(f"`rows` must be 2-D; received an array of shape {rows.shape}")
            rows = rows.tolist()
        rows = self._row_list(rows)
        for i, row in enumerate(rows):
            self._check_row(i, row)
        return list(zip(*rows))

    def _row_list(self, rows):
        """`rows` as a non-empty list of rows, `{column: value}` dicts turned into lists."""
        if not isinstance(rows, (list, tuple)):
            raise ValueError(
                "`rows` must be a list of rows (lists or {feature_name: value} dicts), a 2-D "
                f"NumPy array or a pandas DataFrame. Received: {type(rows).__name__}"
            )
        if not rows:
            raise ValueError("`rows` is empty: pass at least one row.")
        return self._dict_rows(rows) if isinstance(rows[0], dict) else rows

    def _check_row(self, i, row):
        """Raises a `ValueError` unless row `i` is a list of one value per feature."""
        width = len(self.feature_names)
        if not isinstance(row, (list, tuple)):
            raise ValueError(
                f"Row {i} is {type(row).__name__} {_short(row)}, not a list of {width} values "
                f"({_listing(self.feature_names)})."
            )
        if len(row) != width:
            raise ValueError(
                f"Row {i} has {len(row)} values; {self.name} takes {width} "
                f"({_listing(self.feature_names)})."
            )

    def _frame_columns(self, frame):
        """A DataFrame's feature columns as NumPy arrays (extra columns are ignored)."""
        missing = [f for f in self.feature_names if f not in frame.columns]
        if missing:
            raise ValueError(f"The DataFrame lacks column(s) {_listing(missing)} that "
                             f"{self.name} takes.")
        if not len(frame):
            raise ValueError("`rows` is empty: pass at least one row.")
        return [frame[f].to_numpy() for f in self.feature_names]

    def _dict_rows(self, rows):
        """`{feature_name: value}` rows as lists in `feature_names` order (input names work too)."""
        out = []
        names = self.feature_names
        inputs = None if self._columns is None else [c.input for c in self._columns]
        for i, row in enumerate(rows):
            if not isinstance(row, dict):
                raise ValueError(
                    f"Row {i} is a {type(row).__name__} but row 0 is a dict: rows must be all "
                    "lists or all {feature_name: value} dicts."
                )
            unknown = [k for k in row if k not in self._index]
            if unknown:
                raise ValueError(
                    f"Row {i} has unknown column(s) {', '.join(map(repr, unknown))}; "
                    f"{self.name}'s columns are {_listing(names)}."
                )
            try:
                out.append([row[f] for f in names])
            except KeyError:
                if inputs is not None and all(k in row for k in inputs):
                    out.append([row[k] for k in inputs])
                    continue
                missing = [f for f in names if f not in row]
                raise ValueError(
                    f"Row {i} lacks column(s) {_listing(missing)}; send every column, with "
                    "null (None) for a missing value." if self.missing_ok else
                    f"Row {i} lacks feature(s) {_listing(missing)}."
                ) from None
        return out

    def _checked(self, rows):
        """The rows as float32, value by value; a `ValueError` names the first that is not right."""
        width = len(self.feature_names)
        out = np.empty((len(rows), width), dtype=np.float32)
        for i, row in enumerate(rows):
            if isinstance(row, np.ndarray):
                row = row.tolist()
            self._check_row(i, row)
            for j, value in enumerate(row):
                out[i, j] = _check_number(self, i, self.feature_names[j], value)
        return out


class _ColumnReader:
    """Turns one column's raw values into its signature input, checked (a `metadata.json` feature)."""

    def __init__(self, feature):
        self.name = feature["name"]
        self.input = feature["input"]
        self.categorical = feature["kind"] == "categorical"
        vocabulary = [v for v in feature.get("vocabulary") or () if v != ""]
        self.numbered = self.categorical and bool(vocabulary) and all(
            _looks_numeric(v) for v in vocabulary)
        self.shown = _listing(vocabulary, limit=5) if self.categorical else ""

    def __call__(self, values):
        if not self.categorical:
            if isinstance(values, np.ndarray) and values.dtype.kind in "biuf":
                with np.errstate(over="ignore"):
                    x = values.astype(np.float32)
                if not np.isinf(x).any():
                    return x
            return np.array([self.number(i, v) for i, v in enumerate(values)], dtype=np.float32)
        return np.array([self.category(i, v) for i, v in enumerate(values)], dtype=object)

    def number(self, i, value):
        if value is None:
            return math.nan
        if isinstance(value, str):
            if value.strip() in MISSING:
                return math.nan
            raise ValueError(
                f"Row {i}, column {self.name!r}: {_short(value)} is text, but {self.name!r} is "
                "numeric. Send a number, or null (None) for a missing value."
            )
        return _check_number(None, i, self.name, value, missing_ok=True)

    def category(self, i, value):
        if isinstance(value, str):
            value = value.strip()
            return "" if value in MISSING else value
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return ""
        if isinstance(value, (numbers.Real, np.number)) and not isinstance(value, (bool, np.bool_)):
            if self.numbered:  # a class coded 1/2/3, read with `--categorical`
                number = float(value)
                return str(int(number)) if number.is_integer() else str(number)
            raise ValueError(
                f"Row {i}, column {self.name!r}: {_short(value)} is a number, but {self.name!r} "
                f"is categorical: send its category as text (seen in training: {self.shown})."
            )
        if isinstance(value, (bool, np.bool_)):
            return "true" if value else "false"
        raise ValueError(
            f"Row {i}, column {self.name!r}: {_short(value)} is not a category (text) or null."
        )


def _looks_numeric(text):
    try:
        float(text)
    except ValueError:
        return False
    return True


def _is_dataframe(rows):
    return hasattr(rows, "columns") and hasattr(rows, "iloc") and hasattr(rows, "to_numpy")


def _as_float_column(model, name, values):
    if values.dtype.kind in "biuf":
        return values.astype(np.float32)
    return np.array([_check_number(model, i, name, v) for i, v in enumerate(values)], np.float32)


def _check_number(model, i, feature, value, missing_ok=None):
    """`value` as a float, or a `ValueError` naming row `i` and `feature`."""
    if missing_ok is None:
        missing_ok = model.missing_ok
    if missing_ok and (value is None or (isinstance(value, str) and value.strip() in MISSING)):
        return math.nan
    if not isinstance(value, (numbers.Real, np.number)) or isinstance(value, (bool, np.bool_)):
        what = " (it is text)" if isinstance(value, str) else ""
        raise ValueError(f"Row {i}, feature {feature!r}: {_short(value)} is not a number{what}; "
                         "send a number" + (", or null (None) for a missing value."
                                            if missing_ok else "."))
    try:
        number = float(value)
    except OverflowError:  # an int too large for a float
        number = math.inf
    if math.isnan(number) and missing_ok:
        return number
    if not abs(number) <= FLOAT32_MAX:  # also catches nan
        raise ValueError(
            f"Row {i}, feature {feature!r}: {_short(value)} is not a finite number "
            "(within float32's range, ±3.4e38)."
        )
    return number


def _short(value, limit=40):
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _listing(items, limit=8):
    shown = ", ".join(repr(s) for s in items[:limit])
    return shown if len(items) <= limit else f"{shown}, ... ({len(items)} in all)"
