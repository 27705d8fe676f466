"""The export layout: what a version folder holds and how it appears on disk.

One module owns the contract that writers (`models.export.savedmodel`,
`models.export.tree`) and readers (`models.zoo`, `models.serve`) share: file
names, the signature and its input and output names, version folders, and the
whole-or-nothing way a version folder is published. Standard library only: a
reader imports it without TensorFlow.

`ROOT/NAME/VERSION/` is TensorFlow Serving's layout: VERSION is one more than
the highest there, so nothing is overwritten. A version folder is written under
a hidden staging name in the same parent (`.staging-HOST-PID-RANDOM`), its files
are flushed to disk, and it is renamed into place when complete, so it appears
whole or not at all, whenever the process is killed (or the machine loses
power). A killed run's staging folder stays behind until the next export to the
same `ROOT/NAME` removes it (`remove_stale_staging`): one whose process is gone
(`alive`), or that is older than a day; a live run's is never touched. The
same liveness check guards a training run's checkpoint folder
(`models.training.checkpoints`).

Example:

>>> import os
>>> from models.export import layout
>>> layout.alive(os.getpid())
True
>>> layout.OUTPUTS["regression"]
('predictions',)
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import socket
import time
import uuid
from pathlib import Path

SIGNATURE = "serving_default"
"""The SavedModel signature (TensorFlow Serving's default) every export serves."""
INPUT = "features"
"""The signature's input for an all-numeric table: float32 `[None, n_features]`."""
LAYOUTS = ("matrix", "columns")
"""How a signature takes its inputs (`metadata.json`'s `inputs`): one `features`
matrix, or one rank-1 input per column (a table with a categorical column)."""

MISSING = ("", "NA", "N/A", "n/a", "NaN", "nan", "-NaN", "-nan", "NULL", "null", "None", "<NA>",
           "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "1.#IND", "1.#QNAN")
"""Text read as a missing value (after stripping whitespace), in a CSV cell or a
request: pandas' `read_csv` defaults."""

OUTPUTS = {
    "binary": ("class_ids", "labels", "probabilities"),
    "multiclass": ("class_ids", "labels", "probabilities"),
    "regression": ("predictions",),
}
"""The signature's output names for each task, sorted."""

FLOAT32_MAX = 3.4028234663852886e38
"""The largest float32: inputs are float32, so a feature value beyond it cannot be sent."""

SAVEDMODEL_FILE = "saved_model.pb"
KERAS_FILE = "model.keras"
ONNX_FILE = "model.onnx"
METADATA_FILE = "metadata.json"
HISTORY_FILE = "history.csv"

STAGING_PREFIX = ".staging-"
STALE_SECONDS = 24 * 3600
"""A staging folder older than this is stale whatever its process: no export takes a day."""


def versions(model_root):
    """The version numbers under `model_root` (a `ROOT/NAME` folder), sorted."""
    model_root = Path(model_root)
    if not model_root.is_dir():
        return []
    return sorted(int(p.name) for p in model_root.iterdir() if p.is_dir() and p.name.isdigit())


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
    staging = root / f"{STAGING_PREFIX}{host()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
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
        dead = owner is not None and owner[0] == host() and not alive(owner[1])
        if dead or age > max_age:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def _staging_owner(name):
    """`(host, pid)` from a staging folder's name; the host is this one's in the older
    `.staging-PID-RANDOM` form; `None` when the name holds no pid."""
    parts = name[len(STAGING_PREFIX):].rsplit("-", 2)
    if len(parts) == 2:
        parts = [host(), *parts]
    if len(parts) != 3 or not parts[1].isdigit() or int(parts[1]) <= 0:
        return None
    return parts[0], int(parts[1])


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


def host():
    """This machine's name, as written into the names of files a run leaves behind."""
    return socket.gethostname() or "localhost"


def alive(pid):
    """Whether process `pid` of this host is running (a zombie counts as dead).

    Args:
        pid: a process id.

    Returns:
        `True` when the process exists and has not exited. Without permission
        to signal it (another user's process), it counts as alive.
    """
    if not isinstance(pid, int) or pid <= 0:
        raise ValueError(f"`pid` must be an integer > 0. Received: pid={pid!r}")
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:  # e.g. Windows: an unknown pid
        return False
    try:  # Linux: an exited child that its parent has not reaped yet is state Z
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            return stat.read().rpartition(")")[2].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return True
