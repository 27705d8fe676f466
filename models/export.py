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
folder is written under a hidden staging name in the same parent
(`.staging-HOST-PID-RANDOM`), its files are flushed to disk, and it is renamed
into place when complete, so a version folder appears whole or not at all,
whenever the process is killed (or the machine loses power). A killed run's
staging folder stays behind until the next export to the same `ROOT/NAME`
removes it (`remove_stale_staging`): one whose process is gone, or that is
older than a day; a live run's is never touched.
`tensorflow/serving --model_base_path=ROOT/NAME` serves it as it is.
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import time
import uuid
from pathlib import Path

from models import processes

STAGING_PREFIX = ".staging-"
STALE_SECONDS = 24 * 3600
"""A staging folder older than this is stale whatever its process: no export takes a day."""


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
    remove_stale_staging(root)
    staging = root / f"{STAGING_PREFIX}{processes.host()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    try:
        write(staging)
        meta = dict(metadata)
        meta["created_at"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        return _publish(staging, root, meta)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def remove_stale_staging(model_root, *, max_age=STALE_SECONDS):
    """Removes the staging folders that killed exports left in `model_root`.

    A staging folder is stale when the process that named itself in it
    (`.staging-HOST-PID-RANDOM`) ran on this host and is gone, or when it is
    older than `max_age` seconds (another host's, or a reused pid's). A live
    export's folder is kept, so concurrent runs never lose their work.

    Args:
        model_root: a `ROOT/NAME` folder.
        max_age: seconds after which any staging folder is stale. Defaults to
            `STALE_SECONDS` (a day).

    Returns:
        The `Path`s removed.
    """
    model_root = Path(model_root)
    if not model_root.is_dir():
        return []
    removed = []
    for folder in model_root.iterdir():
        if not folder.name.startswith(STAGING_PREFIX) or not folder.is_dir():
            continue
        owner = _staging_owner(folder.name)
        try:
            age = time.time() - folder.stat().st_mtime
        except OSError:  # removed meanwhile
            continue
        dead = owner is not None and owner[0] == processes.host() and not processes.alive(owner[1])
        if dead or age > max_age:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def _staging_owner(name):
    """`(host, pid)` from a staging folder's name; the host is this one's in the older
    `.staging-PID-RANDOM` form; `None` when the name holds no pid."""
    parts = name[len(STAGING_PREFIX):].rsplit("-", 2)
    if len(parts) == 2:
        parts = [processes.host(), *parts]
    if len(parts) != 3 or not parts[1].isdigit() or int(parts[1]) <= 0:
        return None
    return parts[0], int(parts[1])


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
        _sync_tree(staging)  # on disk before the rename, so a power cut cannot leave it half
        target = root / str(version)
        try:
            os.rename(staging, target)  # atomic; fails if another run took this number
        except OSError:
            if not target.exists():
                raise
            continue
        fsync_path(root)
        return target


def _sync_tree(folder):
    """Flushes every file and folder under `folder` to disk (POSIX; best effort)."""
    for parent, _, files in os.walk(folder):
        for name in files:
            fsync_path(os.path.join(parent, name))
        fsync_path(parent)


def fsync_path(path):
    """Flushes the file or folder at `path` to disk (POSIX; a no-op where it cannot)."""
    try:
        handle = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(handle)
    except OSError:
        pass
    finally:
        os.close(handle)
