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

`rows` may be a list of lists, a NumPy array `[rows, features]`, or a list of
`{feature_name: value}` dicts; raw feature values, as in the training data.

Two runtimes, one interface. When the version folder has `model.onnx` and
ONNX Runtime is installed, `Model` runs the ONNX file: TensorFlow is never
imported, a fresh process starts in a fraction of a second, and one row costs
microseconds. Otherwise it calls the SavedModel's `serving_default` signature
directly (TensorFlow, no Keras). Both give the signature's named outputs.

Every load, here and in `models.serve`, goes through `load_folder`: the one
place that reads a version folder and decides whether it can be trusted.

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
from pathlib import Path

import numpy as np

from models.export.layout import (
    FLOAT32_MAX,
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
    model takes `features` of the width the metadata names and returns the
    signature's outputs for its task.

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
    width = len(metadata["feature_names"])
    has_onnx = (folder / ONNX_FILE).is_file()
    if backend == "auto":
        backend = "onnx" if has_onnx and _onnxruntime_installed() else "savedmodel"
    if backend == "onnx":
        if not has_onnx:
            raise ModelLoadError(
                f"{folder} has no {ONNX_FILE} (its metadata's `onnx` field says why, if the "
                "export tried); load it with backend='savedmodel'."
            )
        runner = _OnnxRunner(folder / ONNX_FILE, folder, width, expected)
    else:
        if not (folder / SAVEDMODEL_FILE).is_file():
            raise ModelLoadError(
                f"{folder} has no {SAVEDMODEL_FILE}: it is not a SavedModel export. "
                "Point at a version folder written by `python -m recipes.run`."
            )
        runner = _SavedModelRunner(folder, width, expected)
    return Model(folder, metadata, runner, backend)


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
        raise ModelLoadError(f"{path} cannot be read as JSON: {error}.") from None
    problem = None
    if not isinstance(metadata, dict):
        problem = "it is not a JSON object"
    elif metadata.get("task") not in OUTPUTS:
        problem = f"its `task` is {metadata.get('task')!r}, not one of {', '.join(OUTPUTS)}"
    elif not (isinstance(metadata.get("feature_names"), list) and metadata["feature_names"]
              and all(isinstance(f, str) for f in metadata["feature_names"])):
        problem = "its `feature_names` is not a non-empty list of strings"
    elif metadata["task"] != "regression" and not (
        isinstance(metadata.get("class_names"), list) and len(metadata["class_names"]) >= 2
    ):
        problem = "a classifier's `class_names` must list at least 2 classes"
    if problem:
        raise ModelLoadError(f"{path} is not an export's metadata: {problem}.")
    return metadata


def _onnxruntime_installed():
    import importlib.util

    return importlib.util.find_spec("onnxruntime") is not None


class _OnnxRunner:
    """Runs `model.onnx` with ONNX Runtime: float32 rows in, named NumPy outputs out."""

    def __init__(self, path, folder, width, expected):
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
            raise ModelLoadError(f"{path} cannot be loaded by ONNX Runtime: {error}") from None
        inputs = {i.name: i.shape for i in self.session.get_inputs()}
        self.names = [o.name for o in self.session.get_outputs()]
        _check_signature(folder, ONNX_FILE, inputs, self.names, width, expected)

    def __call__(self, x):
        return dict(zip(self.names, self.session.run(self.names, {INPUT: x})))


class _SavedModelRunner:
    """Calls the SavedModel's `serving_default` signature (TensorFlow, no Keras)."""

    def __init__(self, folder, width, expected):
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        import tensorflow as tf

        self._tf = tf
        try:
            loaded = tf.saved_model.load(str(folder))
        except Exception as error:  # TensorFlow raises many types for a bad SavedModel
            raise ModelLoadError(f"{folder} cannot be loaded as a SavedModel: {error}") from None
        if SIGNATURE not in loaded.signatures:
            raise ModelLoadError(
                f"{folder} has no `{SIGNATURE}` signature (it has: "
                f"{', '.join(loaded.signatures) or 'none'}); export it with `models.export`."
            )
        self._loaded = loaded  # keeps the signature's variables alive
        self.function = loaded.signatures[SIGNATURE]
        specs = self.function.structured_input_signature[1]
        inputs = {name: spec.shape.as_list() for name, spec in specs.items()}
        self.names = sorted(self.function.structured_outputs)
        _check_signature(folder, SIGNATURE, inputs, self.names, width, expected)

    def __call__(self, x):
        outputs = {k: v.numpy() for k, v in self.function(**{INPUT: self._tf.constant(x)}).items()}
        if "labels" in outputs:
            outputs["labels"] = np.array([b.decode("utf-8") for b in outputs["labels"]], dtype=object)
        return outputs


def _check_signature(folder, what, inputs, outputs, width, expected):
    """Checks a model's input (`features`, `[None, width]`) and output names."""
    shape = inputs.get(INPUT)
    if list(inputs) != [INPUT] or shape is None or len(shape) != 2 or shape[1] != width:
        raise ModelLoadError(
            f"The {what} of {folder} does not take `{INPUT}` of shape [None, {width}] as its "
            f"metadata's {width} feature names say (inputs: {inputs}); the folder's files do "
            "not belong together. Re-export the model."
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
        output_names: the signature's output names, sorted.
    """

    def __init__(self, path, metadata, runner, backend):
        self.path = Path(path)
        self.name = self.path.parent.name if self.path.name.isdigit() else self.path.name
        self.version = int(self.path.name) if self.path.name.isdigit() else metadata.get("version")
        self.metadata = metadata
        self.task = metadata["task"]
        self.feature_names = list(metadata["feature_names"])
        self.class_names = metadata.get("class_names") if self.task != "regression" else None
        self.backend = backend
        self.output_names = list(OUTPUTS[self.task])
        self._run = runner
        self._index = {name: i for i, name in enumerate(self.feature_names)}

    def __repr__(self):
        return f"<zoo.Model {self.name} v{self.version} {self.task} ({self.backend}) at {self.path}>"

    def predict(self, rows):
        """Labels (classification, an object array of `str`) or values (regression, float32).

        Raises:
            ValueError: rows the model cannot take (see `features`).
        """
        outputs = self._run(self.features(rows))
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
        return self._run(self.features(rows))["probabilities"]

    def outputs(self, rows):
        """All of the signature's named outputs, as NumPy arrays."""
        return self._run(self.features(rows))

    def run(self, features):
        """The signature's outputs for a float32 `[rows, features]` array that is already checked."""
        return self._run(features)

    def features(self, rows):
        """Checks `rows` and returns them as the float32 `[rows, features]` array the model takes.

        Args:
            rows: a list of lists, a 2-D NumPy array, or a list of
                `{feature_name: value}` dicts, with raw feature values.

        Returns:
            A C-contiguous float32 array `[len(rows), len(feature_names)]`.

        Raises:
            ValueError: no rows, a row of the wrong width, a missing or unknown
                feature name, or a value that is not a finite number; the
                message says which row and feature.
        """
        width = len(self.feature_names)
        if isinstance(rows, np.ndarray):
            if rows.ndim != 2:
                raise ValueError(
                    f"`rows` must be 2-D [rows, {width}]; for one row pass [row] or "
                    f"x.reshape(1, -1). Received: an array of shape {rows.shape}"
                )
            if rows.dtype.kind in "biuf" and rows.shape[1] == width and len(rows):
                x = np.ascontiguousarray(rows, dtype=np.float32)
                if np.isfinite(x).all():
                    return x
            return self.features(rows.tolist())
        if not isinstance(rows, (list, tuple)):
            raise ValueError(
                "`rows` must be a list of rows (lists or {feature_name: value} dicts) or a 2-D "
                f"NumPy array. Received: {type(rows).__name__}"
            )
        if not rows:
            raise ValueError("`rows` is empty: pass at least one row.")
        if isinstance(rows[0], dict):
            rows = self._dict_rows(rows)
        try:
            x = np.array(rows)
        except ValueError:  # rows of different lengths
            x = None
        if x is not None and x.dtype.kind in "biuf" and x.ndim == 2 and x.shape[1] == width:
            x = x.astype(np.float32)
            if np.isfinite(x).all():
                return x
        self._explain(rows)
        raise ValueError(f"`rows` cannot be read as a [rows, {width}] table of numbers.")

    def _dict_rows(self, rows):
        """`{feature_name: value}` rows as lists in `feature_names` order."""
        out = []
        for i, row in enumerate(rows):
            if not isinstance(row, dict):
                raise ValueError(
                    f"Row {i} is a {type(row).__name__} but row 0 is a dict: rows must be all "
                    "lists or all {feature_name: value} dicts."
                )
            unknown = [k for k in row if k not in self._index]
            if unknown:
                raise ValueError(
                    f"Row {i} has unknown feature name(s) {', '.join(map(repr, unknown))}; "
                    f"{self.name}'s features are {_listing(self.feature_names)}."
                )
            if len(row) != len(self._index):
                missing = [f for f in self.feature_names if f not in row]
                raise ValueError(f"Row {i} lacks feature(s) {_listing(missing)}.")
            out.append([row[f] for f in self.feature_names])
        return out

    def _explain(self, rows):
        """Raises a `ValueError` naming the first row and value that is not right."""
        width = len(self.feature_names)
        for i, row in enumerate(rows):
            if isinstance(row, np.ndarray):
                row = row.tolist()
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
            for j, value in enumerate(row):
                feature = self.feature_names[j]
                if not isinstance(value, (numbers.Real, np.number)):
                    raise ValueError(
                        f"Row {i}, feature {feature!r}: {_short(value)} is not a number."
                    )
                try:
                    number = abs(float(value))
                except OverflowError:  # an int too large for a float
                    number = math.inf
                if not number <= FLOAT32_MAX:  # also catches nan
                    raise ValueError(
                        f"Row {i}, feature {feature!r}: {_short(value)} is not a finite number "
                        "(within float32's range, ±3.4e38)."
                    )


def _short(value, limit=40):
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _listing(items, limit=8):
    shown = ", ".join(repr(s) for s in items[:limit])
    return shown if len(items) <= limit else f"{shown}, ... ({len(items)} in all)"
