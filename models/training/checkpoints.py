"""Resuming an interrupted training run from its last finished epoch.

`Checkpoint` is a Keras callback for `models.training.fit`. At epoch ends it
saves what the run needs to go on: the model's variables (weights, and the
seed state of its dropout layers), the optimizer's variables (step count,
moments), `EarlyStopping`'s state, the history so far and the epoch number.
They go into one file, `checkpoint.npz`, written under a temporary name,
flushed to disk and renamed over the previous one, so a kill (Ctrl-C,
`kill -9`, a power cut) at any moment leaves the last save or the one before
it, whole. It saves at the end of every epoch that ends at least `every`
seconds (1 s) after the last save, and always when training ends: an epoch
of a second or more is always saved, while a run of many quick epochs is not
slowed by a disk write (about 15 ms with its fsync) per few-millisecond epoch
and loses at most about a second of work. A save at an epoch's end is written
in the background (`models.training.background`) while the next epoch trains
(its values are copied first); the one when training ends is on disk before
`fit` returns. The per-epoch shuffle needs no saved state:
`fit(initial_epoch=N)` replays the seeded generator's first N permutations,
so a resumed run sees the same batches as an uninterrupted one and, on a
CPU, ends with the same weights.

Where: `OUTPUT_DIR/.runs/NAME-KEY/` (`folder_for`), KEY a hash of everything
that shapes the training (recipe, model, the data's sha256, the options). The
same command finds the same folder; another `--epochs`, seed or CSV starts
afresh in its own. The caller removes the folder when the run completes
(`Checkpoint.remove`). While a run trains, `owner.json` names its process: a
second run of the same command started while the first is alive gets
`CheckpointBusy` (and trains without a checkpoint rather than interleave);
the owner file of a dead process is taken over.

Example:

>>> from models import training
>>> from models.training import checkpoints
>>> folder = checkpoints.folder_for("saved_models", "my-run", {"seed": 1})  # doctest: +SKIP
>>> checkpoint = checkpoints.Checkpoint.open(folder)  # doctest: +SKIP
>>> start = checkpoint.resume_epoch(epochs=20)  # 0 on a fresh run  # doctest: +SKIP
>>> training.fit(model, x, y, epochs=20, callbacks=[checkpoint],
...              initial_epoch=start)  # doctest: +SKIP
>>> checkpoint.remove()  # the run is complete  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import time
import zipfile
from pathlib import Path

import keras
import numpy as np

from models.export import layout
from models.training.background import Serial

RUNS = ".runs"
"""The folder under the export root that holds one folder per unfinished run."""

FILE = "checkpoint.npz"
OWNER = "owner.json"
FORMAT = 1
_EARLY_STOPPING = ("wait", "stopped_epoch", "best", "best_epoch")


class CheckpointBusy(RuntimeError):
    """Another live process is training the same run; the message names it."""


def folder_for(output_dir, name, key):
    """The run folder `output_dir/.runs/NAME-HASH` of the run that `key` describes.

    Args:
        output_dir: the export root, e.g. `"saved_models"`.
        name: the recipe's name.
        key: a JSON-able dict of everything that shapes the training (values
            JSON cannot hold are written with `str`).

    Returns:
        A `Path`; nothing is created.
    """
    text = json.dumps(key, sort_keys=True, default=str)
    return Path(output_dir) / RUNS / f"{name}-{hashlib.sha256(text.encode()).hexdigest()[:16]}"


def _finite(logs):
    return all(math.isfinite(v) for v in logs.values() if isinstance(v, (int, float)))


class Checkpoint(keras.callbacks.Callback):
    """Saves the training state at epoch ends, atomically; restores it on resume.

    Make it with `Checkpoint.open(folder)`, which takes the folder for this
    process and reads what an interrupted run left there. Pass it to
    `models.training.fit` as the last callback (after `EarlyStopping`, whose
    decisions it records) with `initial_epoch=checkpoint.resume_epoch(epochs)`.
    An epoch whose loss is not finite is never saved, so a diverging run
    cannot leave a checkpoint that resumes into NaN weights.

    Args:
        folder: the run folder (`folder_for`).
        early_stopping: the run's `keras.callbacks.EarlyStopping`, whose counters
            and best weights are saved too. Defaults to `None`.
        every: the least seconds between two saves at epoch ends; `0` saves
            every epoch. Defaults to `1.0`.
    """

    def __init__(self, folder, *, early_stopping=None, every=1.0):
        super().__init__()
        if not (isinstance(every, (int, float)) and every >= 0):
            raise ValueError(f"`every` must be a number of seconds >= 0. Received: every={every!r}")
        self.folder = Path(folder)
        self.early_stopping = early_stopping
        self.every = float(every)
        self._last_save = -math.inf
        self.saved = None
        """The state read from disk (`epoch`, `done`, `stopped`, `history`, ...), or `None`."""
        self.problem = None
        """Why a checkpoint file on disk was not used, or `None`."""
        self._arrays = {}
        self._history = {}
        self._epoch = self._epoch_saved = 0
        self._stopped = False
        self._diverged = False
        self._started = None
        self._writes = Serial()  # the file writes, one at a time, off the epoch loop
        self.key = None

    @classmethod
    def open(cls, folder, *, key=None, early_stopping=None, restart=False, every=1.0):
        """Takes `folder` for this process and reads the checkpoint an earlier run left.

        Args:
            folder: the run folder (`folder_for`); created if missing.
            key: what the run is, saved beside the state for people reading
                the folder. Defaults to `None`.
            early_stopping: see `Checkpoint`. Defaults to `None`.
            every: see `Checkpoint`. Defaults to `1.0`.
            restart: ignore (delete) what an earlier run left. Defaults to `False`.

        Returns:
            A `Checkpoint`; its `saved` is `None` on a fresh start.

        Raises:
            CheckpointBusy: a live process of this host trains the same run.
            OSError: the folder cannot be created or written.
        """
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        _take(folder)
        checkpoint = cls(folder, early_stopping=early_stopping, every=every)
        checkpoint.key = key
        if restart:
            (folder / FILE).unlink(missing_ok=True)
        else:
            checkpoint._read()
        return checkpoint

    @property
    def epoch(self):
        """The epochs finished in the saved state (0 on a fresh start)."""
        return self.saved["epoch"] if self.saved else 0

    @property
    def epoch_saved(self):
        """The epochs whose end is saved on disk, this process's included."""
        self._settle()
        return self._epoch_saved

    @property
    def history(self):
        """The saved per-epoch logs (`{}` on a fresh start)."""
        return {k: list(v) for k, v in (self.saved or {}).get("history", {}).items()}

    def resume_epoch(self, epochs):
        """The `initial_epoch` for `fit`: the saved epoch, or `epochs` if training had ended.

        A run that had finished, or that early stopping had stopped, resumes
        with no epoch left; `fit` then only restores its state (and early
        stopping's best weights).
        """
        if not self.saved:
            return 0
        if self.saved["done"] or self.saved["stopped"]:
            return epochs
        return min(self.saved["epoch"], epochs)

    def merge(self, history):
        """The saved epochs' logs followed by those of `history` (a `fit` history dict)."""
        before = self.history
        keys = list(dict.fromkeys([*before, *history]))
        return {k: before.get(k, []) + list(history.get(k, [])) for k in keys}

    def remove(self):
        """Deletes the run folder: the run is complete (or failed for good)."""
        self._settle()
        shutil.rmtree(self.folder, ignore_errors=True)
        try:
            self.folder.parent.rmdir()  # `.runs` itself, when no other run is open
        except OSError:
            pass

    def release(self):
        """Gives the folder up (keeping the checkpoint), e.g. when a run stops on an error."""
        self._settle()
        try:
            owner = json.loads((self.folder / OWNER).read_text(encoding="utf-8"))
            if owner.get("pid") == os.getpid():
                (self.folder / OWNER).unlink()
        except (OSError, ValueError):
            pass

    # Keras callback hooks -------------------------------------------------------------

    def on_train_begin(self, logs=None):
        self._history = self.history
        self._epoch = self.epoch
        self._stopped = bool(self.saved and self.saved["stopped"])
        self._diverged = False
        if self.saved:
            _assign(self.model.variables, self._arrays, "model")
            _assign(self.model.optimizer.variables, self._arrays, "optimizer")
            if self.early_stopping is not None and "early_stopping" in self.saved:
                state = self.saved["early_stopping"]
                for name in _EARLY_STOPPING:
                    setattr(self.early_stopping, name, state[name])
                best = [self._arrays[f"best_{i}"] for i in range(state["best_weights"])]
                self.early_stopping.best_weights = best if state["best_weights"] else None

    def on_epoch_begin(self, epoch, logs=None):
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        if self._diverged or not _finite(logs):
            self._diverged = True  # never save NaN weights
            return
        logs["epoch_seconds"] = time.perf_counter() - (self._started or time.perf_counter())
        for k, v in logs.items():
            self._history.setdefault(k, []).append(float(v))
        self._epoch = epoch + 1
        self._stopped = bool(self.model.stop_training)
        if self._stopped or time.perf_counter() - self._last_save >= self.every:
            self._save(done=False)

    def on_train_end(self, logs=None):
        if not self._diverged:
            self._save(done=True)
        self._writes.wait()  # the last save is on disk (or its error raised) when fit returns

    # Files --------------------------------------------------------------------------

    def _save(self, done):
        """Snapshots the state now (copies: training goes on) and writes it in the background."""
        arrays = {}
        for i, v in enumerate(self.model.variables):
            arrays[f"model_{i}"] = np.asarray(v).copy()
        for i, v in enumerate(self.model.optimizer.variables):
            arrays[f"optimizer_{i}"] = np.asarray(v).copy()
        state = {
            "format": FORMAT, "epoch": self._epoch, "done": done, "stopped": self._stopped,
            "history": self._history, "key": self.key,
            "variables": {"model": len(self.model.variables),
                          "optimizer": len(self.model.optimizer.variables)},
        }
        stopper = self.early_stopping
        if stopper is not None:
            best = stopper.best_weights or []
            state["early_stopping"] = {
                **{name: _plain(getattr(stopper, name)) for name in _EARLY_STOPPING},
                "best_weights": len(best),
            }
            arrays.update({f"best_{i}": np.asarray(w).copy() for i, w in enumerate(best)})
        arrays["state"] = np.array(json.dumps(state, default=str))
        self._writes.submit(self._write, arrays, self._epoch)
        self._last_save = time.perf_counter()

    def _write(self, arrays, epoch):
        _write_atomically(self.folder / FILE, arrays)
        self._epoch_saved = epoch

    def _settle(self):
        """Waits for a write in progress; one that failed leaves `epoch_saved` as it was."""
        try:
            self._writes.wait()
        except Exception:  # noqa: BLE001  the earlier save stays the one on disk
            pass

    def _read(self):
        path = self.folder / FILE
        if not path.exists():
            return
        try:
            with np.load(path, allow_pickle=False) as loaded:
                arrays = {k: loaded[k] for k in loaded.files}
            state = json.loads(str(arrays.pop("state")))
            if state.get("format") != FORMAT:
                raise ValueError(f"format {state.get('format')!r}, expected {FORMAT}")
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:  # damaged
            self.problem = f"{path} could not be read ({error})"
            return
        self.saved, self._arrays = state, arrays
        self._epoch = self._epoch_saved = state["epoch"]

    def fits(self, model):
        """Whether the saved variables have the shapes of `model`'s (and its optimizer's)."""
        if not self.saved:
            return True
        try:
            for prefix, variables in (("model", model.variables),
                                      ("optimizer", model.optimizer.variables)):
                if self.saved["variables"][prefix] != len(variables):
                    return False
                for i, v in enumerate(variables):
                    if tuple(self._arrays[f"{prefix}_{i}"].shape) != tuple(v.shape):
                        return False
        except (KeyError, TypeError):
            return False
        return True

    def discard(self, why):
        """Forgets the saved state (deleting the file); `problem` says `why`."""
        self.problem, self.saved, self._arrays = why, None, {}
        (self.folder / FILE).unlink(missing_ok=True)


def _plain(value):
    if isinstance(value, np.generic):
        return value.item()
    return value


def _assign(variables, arrays, prefix):
    for i, variable in enumerate(variables):
        variable.assign(arrays[f"{prefix}_{i}"])


def _write_atomically(path, arrays):
    """Writes `arrays` as an `.npz` at `path`: temporary file, fsync, rename."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(temporary, "wb") as handle:
        np.savez(handle, **arrays)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    layout.fsync_path(path.parent)


def _take(folder):
    """Writes this process into `folder/owner.json`, unless a live process owns it."""
    owner_file = folder / OWNER
    me = {"pid": os.getpid(), "host": layout.host(), "since": time.time()}
    for _ in range(3):
        try:
            handle = os.open(owner_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            try:
                owner = json.loads(owner_file.read_text(encoding="utf-8"))
                pid, host = int(owner["pid"]), owner.get("host")
            except (OSError, ValueError, KeyError, TypeError):
                owner_file.unlink(missing_ok=True)  # half-written by a killed run
                continue
            if pid != os.getpid() and host == layout.host() and layout.alive(pid):
                raise CheckpointBusy(
                    f"process {pid} is training the same run (its checkpoint is in {folder})"
                )
            owner_file.unlink(missing_ok=True)  # a dead run's, or this process's own
            continue
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(me, out)
        return
    raise CheckpointBusy(f"another process keeps taking {folder}")
