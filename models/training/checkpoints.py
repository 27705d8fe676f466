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
slowed by a save per few-millisecond epoch and loses at most about a second
of work. The file is written by a background thread while the next epoch
trains: the training waits only while the values are read (one TensorFlow
op for every variable) and the `.npz` is made in memory. For the digits
64-64 MLP on a shared 2-core machine that is 3-4 ms a save against 4-6 ms
for the whole save done in line (its fsyncs take about a millisecond there
when the machine is quiet), and 5 ms against 20 ms at a load average of 3
(`scripts/bench.py` shows the training thread's time in saves). The end of
training waits for its own save. The per-epoch shuffle needs no saved state:
`fit(initial_epoch=N)` replays the seeded generator's first N permutations, so
a resumed run sees the same batches as an uninterrupted one and, on a CPU,
ends with the same weights.

Where: `OUTPUT_DIR/.runs/NAME-KEY/` (`folder_for`), KEY a hash of everything
that shapes the training (recipe, model, the data's sha256, the options). The
same command finds the same folder; another `--epochs`, seed or CSV starts
afresh in its own. The caller removes the folder when the run completes
(`Checkpoint.remove`). While a run trains, `owner.json` names its process: a
second run of the same command started while the first is alive gets
`CheckpointBusy` (and trains without a checkpoint rather than interleave);
the owner file of a dead process is taken over.

Signals. While `fit` trains, SIGINT (Ctrl-C) and SIGTERM (what a scheduler or
`docker stop` sends) are held back until the end of the epoch under way: the
checkpoint then saves that epoch whatever `every` says, and the signal goes on
to the handler that was there before (`KeyboardInterrupt` for Ctrl-C), so the
run stops with its last finished epoch on disk. A second signal before that
epoch ends stops the run at once (the previous save is whole on disk); one
that comes while the file is being written waits until it is renamed into
place. The disk's writes are whole-or-nothing either way: a kill at any
moment leaves the previous checkpoint or the new one, never half of one.
(Held back in the main thread only; elsewhere signals act as usual.)

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
import io
import json
import math
import os
import shutil
import signal
import threading
import time
import zipfile
from concurrent import futures
from pathlib import Path

import keras
import numpy as np

from models.export import layout

RUNS = ".runs"
"""The folder under the export root that holds one folder per unfinished run."""

FILE = "checkpoint.npz"
OWNER = "owner.json"
FORMAT = 1
_EARLY_STOPPING = ("wait", "stopped_epoch", "best", "best_epoch")
_SIGNALS = (signal.SIGINT, signal.SIGTERM)


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
        self._held = {}  # signal -> the handler it had before `on_train_begin`
        self._caught = None  # the first held-back signal, until it is passed on
        self._writer = None  # one thread for the writes, from the first save to the last `_join`
        self._pending = None  # (future, epoch) of the write under way, until `_join` records it
        self._saving = False  # in `_save`: a second signal waits for the epoch's end
        self._save_error = None
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
        """The epochs whose end is saved on disk, this process's included (after any write under way)."""
        self._join()
        return self._epoch_saved

    @property
    def save_error(self):
        """Why the last save failed (a full disk), or `None`: training goes on without it."""
        self._join()
        return self._save_error

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
        self._join(close=True)  # a write under way would bring the file back
        shutil.rmtree(self.folder, ignore_errors=True)
        try:
            self.folder.parent.rmdir()  # `.runs` itself, when no other run is open
        except OSError:
            pass

    def release(self):
        """Gives the folder up (keeping the checkpoint), e.g. when a run stops on an error."""
        self._restore_signals()
        self._join(close=True)
        try:
            owner = json.loads((self.folder / OWNER).read_text(encoding="utf-8"))
            if owner.get("pid") == os.getpid():
                (self.folder / OWNER).unlink()
        except (OSError, ValueError):
            pass

    # Keras callback hooks -------------------------------------------------------------

    def on_train_begin(self, logs=None):
        self._hold_signals()
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
        self._pass_on_signal()  # one held back over the last epoch's end: stop before this one
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
        if (self._stopped or self._caught is not None
                or time.perf_counter() - self._last_save >= self.every):
            self._save(done=False)

    def on_train_end(self, logs=None):
        if not self._diverged:
            self._save(done=True)
        self._join(close=True)  # no next epoch to overlap with: the run's last state is on disk
        self._pass_on_signal(done=True)
        self._restore_signals()

    # Signals ---------------------------------------------------------------------------

    def _hold_signals(self):
        """Catches SIGINT and SIGTERM until the epoch under way is saved (main thread only)."""
        if self._held or threading.current_thread() is not threading.main_thread():
            return
        self._caught = None
        for signum in _SIGNALS:
            before = signal.getsignal(signum)
            if before in (signal.SIG_IGN, None):  # ignored (nohup), or not set from Python
                continue
            self._held[signum] = before
            signal.signal(signum, self._catch)

    def _catch(self, signum, frame):
        if self._caught is None:
            self._caught = signum  # stop at the end of this epoch, once it is saved
        elif not self._saving:
            self._join()  # a second signal: stop now, once a write under way is in place
            self._caught = None
            self._deliver(signum)

    def _pass_on_signal(self, done=False):
        """Between epochs: saves the last one and hands a held-back signal to its earlier handler.

        Called when the next epoch begins (or training ends), so the other
        callbacks have seen the epoch's end (its progress line is printed).
        """
        if self._caught is None:
            return
        self._join()
        if self._epoch_saved != self._epoch and not self._diverged:
            self._save(done=done)  # the signal came after this epoch's save was skipped
        signum, self._caught = self._caught, None
        self._deliver(signum)

    def _deliver(self, signum):
        before = self._held.get(signum, signal.SIG_DFL)
        self._restore_signals()
        deliver(signum, before)

    def stop_soon(self):
        """Stops the fit as a held-back Ctrl-C would: its epoch under way saved, then `KeyboardInterrupt`.

        For a fit in another thread, where no signal arrives
        (`recipes.core.workflow.Run.fit_each`); callable from any thread.
        """
        if self._caught is None:
            self._caught = signal.SIGINT

    def _restore_signals(self):
        held, self._held = self._held, {}
        for signum, before in held.items():
            signal.signal(signum, before)

    # Files --------------------------------------------------------------------------

    def _save(self, done):
        """Takes the state now and writes it to disk in a background thread.

        The training goes on while the file is written (its next epoch does
        not wait) by the checkpoint's writer thread, started at the first
        save; the next save, `epoch_saved`, `save_error`, `remove`, `release`
        and the end of training wait for it (`_join`), and the last three end
        the thread. The values are read here, in one TensorFlow op, and the
        `.npz` made in memory, so the thread writes this epoch's state whatever
        the training does meanwhile; it only writes, flushes and renames the
        file (`_write_atomically`), so a kill while it writes leaves the
        previous file whole. A second signal while this runs waits, as the
        first does, for the epoch's end.
        """
        self._join()  # one write at a time: the files land in epoch order
        self._saving = True
        try:
            self._start_write(done)
        finally:
            self._saving = False

    def _start_write(self, done):
        model, optimizer = self.model.variables, self.model.optimizer.variables
        values = _values(model + optimizer)
        arrays = {f"model_{i}": value for i, value in enumerate(values[:len(model)])}
        arrays.update({f"optimizer_{i}": value for i, value in enumerate(values[len(model):])})
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
            arrays.update({f"best_{i}": np.asarray(w) for i, w in enumerate(best)})
        arrays["state"] = np.array(json.dumps(state, default=str))
        content = io.BytesIO()
        np.savez(content, **arrays)  # here: Python work in the thread would hold the GIL
        self._last_save = time.perf_counter()
        if self._writer is None:  # started once, not per save (a thread's start waits for it)
            self._writer = futures.ThreadPoolExecutor(1, thread_name_prefix="checkpoint-writer")
        future = self._writer.submit(_write_atomically, self.folder / FILE, content.getbuffer())
        self._pending = (future, self._epoch)

    def _join(self, close=False):
        """Waits for the write under way, if any, and records it (`epoch_saved`, `save_error`).

        With `close`, the writer thread ends too (the next save starts another).
        """
        pending = self._pending
        if pending is not None:
            future, epoch = pending
            error = future.exception()  # waits for it
            if self._pending is pending:  # not recorded meanwhile (by a signal handler's `_join`)
                self._pending = None
                self._record(epoch, error)
        if close and self._writer is not None:
            writer, self._writer = self._writer, None
            writer.shutdown()

    def _record(self, epoch, error):
        if isinstance(error, OSError):  # a full disk: training goes on; the export will say so
            self._save_error = f"{self.folder / FILE} could not be written ({error})"
        elif error is not None:
            raise error
        else:
            self._save_error = None
            self._epoch_saved = epoch

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
        self._join()
        self.problem, self.saved, self._arrays = why, None, {}
        (self.folder / FILE).unlink(missing_ok=True)


def _plain(value):
    if isinstance(value, np.generic):
        return value.item()
    return value


def _values(variables):
    """The variables' values as NumPy arrays, read in one TensorFlow op (four times faster)."""
    import tensorflow as tf

    if not variables:
        return []
    try:
        values = tf.identity_n(list(variables))
    except (tf.errors.OpError, TypeError, ValueError):  # e.g. no kernel for a dtype on a device
        values = variables
    return [np.asarray(value) for value in values]


def _assign(variables, arrays, prefix):
    for i, variable in enumerate(variables):
        variable.assign(arrays[f"{prefix}_{i}"])


def _write_atomically(path, content):
    """Writes the bytes `content` at `path`: temporary file, fsync, rename."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(temporary, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    layout.fsync_path(path.parent)


def deliver(signum, before):
    """Acts on signal `signum` as its handler `before` (from `signal.getsignal`) would have."""
    if callable(before):
        before(signum, None)  # e.g. raises KeyboardInterrupt
    elif signum == signal.SIGINT:
        raise KeyboardInterrupt
    else:  # the default action: end the process, as the signal would have
        os.kill(os.getpid(), signum)


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
