"""Versioned exports in TensorFlow Serving's layout: `ROOT/NAME/VERSION/`.

A version folder holds

- the SavedModel (`saved_model.pb`, `variables/`, `assets/`) with signature
  `serving_default`: input `features` float32 `[None, n_features]` of raw values;
  outputs `probabilities` float32 `[None, n_classes]` (binary: 2 columns),
  `class_ids` int64 `[None]` and `labels` string `[None]` for classification,
  `predictions` float32 `[None]` for regression;
- `model.keras`, the Keras model, for fine-tuning;
- `model.onnx`, the same serving function in ONNX, for fast prediction and
  apps without TensorFlow (`models.onnx_export`; best effort: when it cannot
  be converted the folder has no ONNX file and `metadata.json`'s `onnx` says why);
- `metadata.json`, what the model is and how it was made;
- whatever else the caller adds (history, figures).

VERSION is one more than the highest there, so nothing is overwritten. The
folder is written under a hidden staging name in the same parent and renamed
into place when complete, so a version folder appears whole or not at all.
`tensorflow/serving --model_base_path=ROOT/NAME` serves it as it is.
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import uuid
from pathlib import Path

STAGING_PREFIX = ".staging-"


def versions(model_root):
    """The version numbers under `model_root` (a `ROOT/NAME` folder), sorted."""
    model_root = Path(model_root)
    if not model_root.is_dir():
        return []
    return sorted(int(p.name) for p in model_root.iterdir() if p.is_dir() and p.name.isdigit())


def serving_function(model, task, class_names=None):
    """The `serving_default` function of `model`: raw `features` in, named outputs out."""
    import tensorflow as tf

    n_features = model.inputs[0].shape[-1]
    spec = tf.TensorSpec([None, n_features], tf.float32, name="features")
    if task == "regression":

        @tf.function(input_signature=[spec])
        def serve(features):
            return {"predictions": tf.reshape(model(features, training=False), [-1])}

        return serve
    labels = tf.constant([str(c) for c in class_names])

    @tf.function(input_signature=[spec])
    def serve(features):
        outputs = model(features, training=False)
        if task == "binary":
            outputs = tf.concat([1.0 - outputs, outputs], axis=1)
        class_ids = tf.argmax(outputs, axis=1, output_type=tf.int64)
        return {
            "probabilities": outputs,
            "class_ids": class_ids,
            "labels": tf.gather(labels, class_ids),
        }

    return serve


def write_savedmodel(model, path, task, class_names=None):
    """Writes `model` as a SavedModel with the `serving_default` signature at `path`."""
    import keras

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serving_default", serving_function(model, task, class_names))
    archive.write_out(str(path), verbose=False)


def write_version(output_dir, name, write, metadata):
    """Writes the next version folder of `output_dir/name`, whole or not at all.

    The generic half of `export`, for any artefact (a Keras model, a decision
    tree): `write(folder)` fills a hidden staging folder, `metadata.json` is
    added last, and the folder is renamed to the next free version number.

    Args:
        output_dir: the export root, e.g. `"saved_models"`.
        name: the model's folder name (the recipe's name).
        write: `callable(folder)` that writes the artefact's files into `folder`.
        metadata: fields for `metadata.json`; `version` and `created_at` are filled in.

    Returns:
        The `Path` of the new version folder.
    """
    root = Path(output_dir) / name
    root.mkdir(parents=True, exist_ok=True)
    staging = root / f"{STAGING_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    try:
        write(staging)
        meta = dict(metadata)
        meta["created_at"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        return _publish(staging, root, meta)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def export(model, *, output_dir, name, task, class_names=None, metadata=None, write_extra=None):
    """Exports a Keras `model` as the next version of `output_dir/name`, whole or not at all.

    Args:
        model: a trained Keras model taking raw features.
        output_dir: the export root, e.g. `"saved_models"`.
        name: the model's folder name (the recipe's name).
        task: `binary`, `multiclass` or `regression`.
        class_names: the label of each class (classification).
        metadata: fields for `metadata.json`; `version`, `task`, `class_names`,
            `tensorflow_version`, `keras_version`, `onnx` and `created_at` are filled in.
        write_extra: `callable(folder)` that adds files (history, figures) before
            the folder is renamed into place. Defaults to `None`.

    Returns:
        The `Path` of the new version folder.
    """
    import keras
    import tensorflow as tf

    from models import onnx_export

    def write(folder):
        write_savedmodel(model, folder, task, class_names)
        model.save(folder / "model.keras")
        meta["onnx"] = onnx_export.write(model, folder, task, class_names)
        if write_extra is not None:
            write_extra(folder)

    meta = dict(metadata or {})
    meta.update(task=task, tensorflow_version=tf.__version__, keras_version=keras.__version__)
    if class_names is not None:
        meta["class_names"] = [str(c) for c in class_names]
    return write_version(output_dir, name, write, meta)


def _publish(staging, root, meta):
    """Renames `staging` to the next free version number, writing its metadata last."""
    while True:
        version = (versions(root) or [0])[-1] + 1
        meta["version"] = version
        (staging / "metadata.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        target = root / str(version)
        try:
            os.rename(staging, target)  # atomic; fails if another run took this number
        except OSError:
            if not target.exists():
                raise
            continue
        return target
