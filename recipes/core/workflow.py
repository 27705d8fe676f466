"""The machinery behind every recipe's Keras code: `Run`, one object per run.

A recipe's function gets a `Run` and reads like a keras-io page:

    data = run.load_data("breast_cancer", task="binary")   # split + front-end
    with run.scope():                                      # seed, strategy, precision
        network = keras.Sequential([...])
        model = data.with_preprocessing(network)
        model.compile(optimizer=run.optimizer(), loss=..., metrics=[...])
    history = run.fit(model, data.x_train, data.y_train, epochs=..., ...)
    return run.finish(model, data, history)                # test, export, report

Everything a learner need not read lives here: the user's CSV (`--data`) and
its checks, seeding, the `tf.distribute` strategy and mixed precision,
resuming an interrupted run from its last saved epoch, refusing a diverged
loss, the test metrics and baselines, the export and the report. `run.fit`
is the one training path: it follows `model.fit` (`epochs`, `batch_size`,
`validation_data`, `callbacks` → a Keras `History`) and trains with
`models.training.fit` (a whole epoch per `tf.function` call) or, under
`--strategy`, `models.training.distribute.fit`. A lesson that compares
variants calls it once per variant with `variant=NAME`, or `run.fit_each`
for independent models (side by side on a CPU's cores, the same numbers);
each variant then has its own checkpoint, so a killed comparison resumes
where it stopped.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import errno
import functools
import io
import json
import math
import os
import shlex
import signal
import tempfile
import threading
import time

import numpy as np

from models import data as bundled
from models.data.prepared import prepare
from models.export import layout, savedmodel
from models.training import devices, distribute, evaluation, optimizers
from recipes.core.errors import RunError, UsageError
from recipes.core.report import Result, Table, save_figures

TASKS = {"binary": "binary-sigmoid", "multiclass": "multiclass-softmax",
         "regression": "leaky-relu-regression", "positive": "relu-regression"}
"""What a recipe's data must be (`positive`: a regression target >= 0, for a ReLU
output) -> the recipe to suggest for a CSV that fits that task."""



def resumable_callbacks():
    """The callback classes whose state a checkpoint saves; any other keeps a run from resuming.

    (A function, so that importing this module does not import Keras: the
    decision-tree lesson runs without TensorFlow.)
    """
    import keras

    from models.training.callbacks import EpochScalars, TerminateOnNonFinite

    # The TensorBoard writers hold no training state: a resumed run logs its later
    # epochs at their own steps, beside the earlier ones.
    return (keras.callbacks.EarlyStopping, TerminateOnNonFinite, keras.callbacks.TensorBoard,
            EpochScalars)

_NOT_IN_RUN_KEY = ("output_dir", "report", "no_export", "restart", "debug", "verbose", "extra",
                   "tensorboard")
"""`RunConfig` fields that do not change what is trained, so not part of a run's key."""


class Run:
    """One run of a recipe: its options, and the steps its Keras code calls.

    Args:
        config: the run's `recipes.core.options.RunConfig`.
    """

    def __init__(self, config):
        self.config = config
        self.started = time.perf_counter()
        self.train_seconds = 0.0
        self.notes = []
        self._device = None
        self._checkpoints = []
        self.histories = {}  # variant (None: the run's one model) -> per-epoch logs

    # Set-up ------------------------------------------------------------------------

    @property
    def device(self):
        """The device the run trains on, in words; chosen (with the strategy) on first use."""
        if self._device is None:
            try:
                self._device = devices.select(self.config.device)
            except devices.DeviceError as error:
                raise RunError(str(error)) from None
            self.strategy  # noqa: B018  before any TensorFlow work, as multi-worker requires
            if self.config.mixed_precision and not self.mixed_precision:
                self.notes.append("--mixed-precision ignored: it speeds up GPUs only, and this "
                                  "run is on the CPU")
            elif self.mixed_precision:
                self.notes.append("Mixed precision: mixed_float16 (hidden layers float16, "
                                  "outputs float32)")
        return self._device

    @functools.cached_property
    def strategy(self):
        """The run's `tf.distribute` strategy (`--strategy`)."""
        try:
            return distribute.get_strategy(self.config.strategy)
        except distribute.DistributeError as error:
            raise RunError(str(error)) from None

    @property
    def mixed_precision(self):
        """Whether models are built in `mixed_float16` (`--mixed-precision` on a GPU)."""
        return self.config.mixed_precision and self.device.startswith("GPU")

    @contextlib.contextmanager
    def scope(self):
        """Build and compile models in here: seeded, under the strategy, in the precision policy.

        Python, NumPy and TensorFlow are seeded with `--seed` on entry, so every
        model built in a fresh `scope()` starts from the same initial weights:
        on a CPU the same command gives the same weights, bit for bit, in any
        process. (Not `tf.config.experimental.enable_op_determinism()`: the CPU
        kernels these models use are deterministic already; it is process-wide
        and permanent, and made dropout epochs at batch size 1 about 30% slower.)
        """
        import keras

        self.device  # noqa: B018  the device and the strategy come first
        keras.utils.set_random_seed(self.config.seed)
        with self.strategy.scope(), distribute.precision_policy(self.mixed_precision):
            yield

    def optimizer(self, name=None, learning_rate=None):
        """A new Keras optimizer: `--optimizer` at `--learning-rate` unless named here.

        `adam` is `keras.optimizers.Adam`, `momentum` is `SGD(momentum=0.9)`
        (see `models.training.optimizers`).
        """
        return optimizers.make(name or self.config.optimizer,
                               self.config.learning_rate if learning_rate is None else learning_rate)

    # Data --------------------------------------------------------------------------

    def load_data(self, default, *, task, scaling=None, train_fraction=None, features=None):
        """The run's data: the user's CSV (`--data`) or the bundled set `default`, split.

        Args:
            default: the bundled data set's name (`models.data.BUNDLED`).
            task: what the recipe's output needs (`TASKS`): `binary`, `multiclass`,
                `regression`, or `positive` (a regression target >= 0). A CSV
                target that does not fit stops the run before training and
                names the recipe that fits.
            scaling: how a regression target is brought to unit size
                (`models.data.prepared.SCALINGS`). Defaults to `scale` for
                `positive`, `centre` otherwise.
            train_fraction: the share of rows to train on; validation and test
                split the rest evenly. Defaults to `None` (60 / 20 / 20).
            features: the default data set's feature columns to keep, by name (a
                user's CSV keeps its own). Defaults to `None` (all of them).

        Returns:
            A `models.data.prepared.PreparedData`.

        Raises:
            UsageError: no such file, or a `--target` / `--drop` column it lacks.
            RunError: data that cannot be used as they are (the message names the fix).
        """
        config = self.config
        if config.data is None:
            dataset = bundled.load(default)
            if features is not None:
                dataset = _keep_features(dataset, features)
        else:
            dataset = self._read_csv(task)
        if dataset.columns is None:  # a CSV table's gaps are imputed in the model
            _check_finite(dataset)
        fractions = {}
        if train_fraction is not None:
            holdout = (1 - train_fraction) / 2
            fractions = {"val_fraction": holdout, "test_fraction": holdout}
        scaling = scaling or ("scale" if task == "positive" else "centre")
        try:
            return prepare(dataset, config.seed, scaling=scaling, **fractions)
        except bundled.DataError as error:
            raise RunError(f"{error} Nothing was trained or exported.") from None

    def _read_csv(self, task):
        from models.data import tables

        config = self.config
        try:
            return tables.read_csv(config.data, config.target, task=task, drop=config.drop,
                                   categorical=config.categorical)
        except (FileNotFoundError, tables.UnknownColumn) as error:
            raise UsageError(str(error)) from None
        except tables.TaskMismatch as error:
            fits = TASKS[error.fits]
            words = ["--data", config.data, "--target", config.target]
            words += [w for column in config.drop for w in ("--drop", column)]
            words += [w for column in config.categorical for w in ("--categorical", column)]
            raise RunError(
                f"{error} The `{fits}` recipe fits these data: `python -m recipes.run {fits} "
                f"{shlex.join(words)}`. Nothing was trained or exported."
            ) from None
        except bundled.DataError as error:
            raise RunError(f"{error} Nothing was trained or exported.") from None

    # Training ----------------------------------------------------------------------

    def fit(self, model, x, y, *, epochs=None, batch_size=None, validation_data=None,
            callbacks=(), variant=None, verbose=None, epoch_scalars=None):
        """Trains a compiled `model` like `model.fit`; resumes an interrupted run of it.

        Args:
            model: a Keras model compiled in `scope()`.
            x: training features.
            y: training targets (`PreparedData.y_train`).
            epochs: passes over the rows. Defaults to `--epochs`.
            batch_size: rows per step, or `"full"`. Defaults to `--batch-size`.
            validation_data: `(x_val, y_val)` scored after every epoch (`val_` logs).
            callbacks: Keras callbacks (epoch-level hooks are called).
            variant: the name of this model among the run's variants (a lesson
                that compares several); each variant resumes on its own.
                Defaults to `None` (the run's one model).
            verbose: `1` prints a line per epoch. Defaults to `1` for the run's one
                model on the command line, `0` for variants (a line each after).
            epoch_scalars: with `--tensorboard`, a function returning `{tag: value}`
                that is measured and logged after every epoch (beside Keras's
                loss, metrics and weight histograms). Defaults to `None`.

        Returns:
            A `keras.callbacks.History` of every epoch (those of an interrupted run
            included); its `history` holds `epoch_seconds` too, and its
            `steps_per_epoch` is set.

        Raises:
            RunError: the loss became NaN or infinite (the message names the epoch).
        """
        history, seconds = self._fit(
            model, x, y, epochs=epochs, batch_size=batch_size, validation_data=validation_data,
            callbacks=callbacks, variant=variant, verbose=verbose, epoch_scalars=epoch_scalars)
        self.train_seconds += seconds
        self._say_trained(variant, history, seconds)
        return history

    def fit_each(self, models, x, y, *, callbacks=None, **options):
        """`fit` for each of several independent models, side by side where that is faster.

        On a machine of two or more CPU cores and no GPU, when every model is
        small enough for the training path's lean, one-core epoch
        (`models.training.loop.is_lean`), the fits run in threads, one per
        core at a time; each trains its own model from its own seeded state,
        so the numbers are those of the fits one after another, bit for bit.
        They take turns to trace their epochs (a trace holds the GIL), so one
        traces while another's epochs run.
        Otherwise (a GPU, `--strategy`, `--tensorboard`, one core, a larger
        model) they run one after another. The lines they print come in the
        order of `models` either way.

        Ctrl-C or SIGTERM stops every fit under way at the end of its epoch,
        that epoch saved, as it stops `fit`: the same command resumes each one.

        Args:
            models: `{variant: compiled model}`; each trains as
                `fit(model, x, y, variant=variant, ...)`.
            x: training features, for every model.
            y: training targets, for every model.
            callbacks: `{variant: [Keras callbacks]}` for the variants that have
                any. Defaults to `None` (none).
            **options: `fit`'s other arguments (`epochs`, `batch_size`,
                `validation_data`, ...), the same for every model.

        Returns:
            `{variant: keras.callbacks.History}`, in the order of `models`.

        Raises:
            RunError: a model's loss became NaN or infinite (the other fits stop first).
        """
        callbacks = callbacks or {}
        workers = self._side_by_side(models)
        if workers == 1:
            return {variant: self.fit(model, x, y, callbacks=callbacks.get(variant, ()),
                                      variant=variant, **options)
                    for variant, model in models.items()}
        from concurrent import futures

        from models.training.callbacks import StopWhenAsked

        stops = {variant: StopWhenAsked() for variant in models}
        started = time.perf_counter()
        with futures.ThreadPoolExecutor(workers, thread_name_prefix="fit") as pool, \
                _stopping_on_signals(stops.values()) as caught:
            jobs = {variant: pool.submit(self._fit, model, x, y,
                                         callbacks=callbacks.get(variant, ()), variant=variant,
                                         stop=stops[variant], **options)
                    for variant, model in models.items()}
            futures.wait(jobs.values(), return_when=futures.FIRST_EXCEPTION)
            if any(job.done() and job.exception() for job in jobs.values()):
                for variant, job in jobs.items():
                    job.cancel()  # not started: it never will
                    stops[variant].ask()
                futures.wait(jobs.values())
        self.train_seconds += time.perf_counter() - started
        failures = [job.exception() for job in jobs.values()
                    if not job.cancelled() and job.exception() is not None]
        problems = [error for error in failures if not isinstance(error, KeyboardInterrupt)]
        if problems:
            raise problems[0]  # the first model's in the order given, as one after another
        if failures or caught["signal"] is not None:  # a signal the fits stopped for
            _interrupted(failures, caught)
        histories = {}
        for variant, job in jobs.items():
            histories[variant], seconds = job.result()
            self.histories[variant] = self.histories.pop(variant)  # in the order of `models`
            self._say_trained(variant, histories[variant], seconds)
        return histories

    def _side_by_side(self, models):
        """How many of `models`' fits `fit_each` runs at a time (1: one after another)."""
        from models.training import loop

        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        self.device  # noqa: B018  the device and the strategy, chosen before any thread starts
        if (len(models) < 2 or (cores or 1) < 2 or not distribute.is_default(self.strategy)
                or self.mixed_precision or self.config.tensorboard is not None
                or not all(loop.is_lean(model) for model in models.values())):
            return 1
        return min(cores, len(models))

    def _fit(self, model, x, y, *, epochs=None, batch_size=None, validation_data=None,
             callbacks=(), variant=None, verbose=None, epoch_scalars=None, stop=None):
        """`fit`'s work, for any thread: returns `(history, seconds)`; `stop`: a `StopWhenAsked`."""
        from models.training import loop
        from models.training.callbacks import TerminateOnNonFinite

        config = self.config
        epochs = config.epochs if epochs is None else epochs
        batch_size = config.batch_size if batch_size is None else batch_size
        if verbose is None:
            verbose = int(config.verbose and variant is None)
        self.device  # noqa: B018
        callbacks = [*callbacks, *self._tensorboard(variant, epoch_scalars),
                     TerminateOnNonFinite()]
        checkpoint = self._open_checkpoint(model, x, y, validation_data, callbacks, variant,
                                           epochs, batch_size)
        train = loop.fit
        if not distribute.is_default(self.strategy):
            train = functools.partial(distribute.fit, strategy=self.strategy)
        resume = {}
        if checkpoint is not None:
            resume["initial_epoch"] = self._resume_epoch(checkpoint, model, epochs, variant)
            callbacks.append(checkpoint)  # last: it records early stopping's decisions
        if stop is not None:
            stop.checkpoint = checkpoint
            callbacks.append(stop)  # after the checkpoint, which saves before it stops
        started = time.perf_counter()
        try:
            history = train(model, x, y, epochs=epochs, batch_size=batch_size,
                            validation_data=validation_data, callbacks=callbacks,
                            seed=config.seed, verbose=verbose, **resume)
        except BaseException as error:
            if checkpoint is not None:
                checkpoint.release()
                if isinstance(error, KeyboardInterrupt) and checkpoint.epoch_saved:
                    error.saved = (variant, checkpoint.epoch_saved, checkpoint.folder)
                    error.resume = (  # the CLI's one line (exit 130 Ctrl-C, 143 SIGTERM)
                        f"{getattr(error, 'what', 'Interrupted')}: {checkpoint.epoch_saved} "
                        f"epoch(s) are saved in {checkpoint.folder}; the same command resumes "
                        "from there (add --restart to start afresh).")
            raise
        if checkpoint is not None and checkpoint.save_error:
            self.notes.append(f"Checkpoint not saved: {checkpoint.save_error}")
        seconds = time.perf_counter() - started
        if checkpoint is not None:
            history.history = checkpoint.merge(history.history)
            history.epoch = list(range(len(history.history["loss"])))
            history.resumed_from = checkpoint.epoch if resume["initial_epoch"] else 0
        self._stop_if_diverged(history.history["loss"], checkpoint, variant, epochs, model)
        self.histories[variant] = history.history
        return history, seconds

    def _say_trained(self, variant, history, seconds):
        """A variant's one line when it has trained (the run's one model shows its epochs instead)."""
        if self.config.verbose and variant is not None:
            logs = history.history
            val = f", val loss {logs['val_loss'][-1]:.4f}" if "val_loss" in logs else ""
            print(f"  {variant:<16} final loss {logs['loss'][-1]:.4f}{val}, "
                  f"{len(logs['loss'])} epochs ({seconds:.1f} s)", flush=True)

    def tensorboard_dir(self, variant=None):
        """The folder of `--tensorboard` event files for `variant` (a sub-folder), or `None`."""
        from pathlib import Path

        if self.config.tensorboard is None:
            return None
        root = Path(self.config.tensorboard)
        return root / variant if variant else root

    def log_series(self, tag, values, variant=None):
        """With `--tensorboard`, writes `values` as one scalar curve, steps 1, 2, …, in `train/`.

        For a lesson's numbers that are not per epoch, e.g. a gradient norm per layer
        (step = layer number). Without `--tensorboard` it does nothing.
        """
        folder = self.tensorboard_dir(variant)
        if folder is None or not distribute.is_chief(self.config.strategy):
            return
        import tensorflow as tf

        writer = tf.summary.create_file_writer(str(folder / "train"))
        with writer.as_default():
            for step, value in enumerate(values, start=1):
                tf.summary.scalar(tag, float(value), step=step)
        writer.close()

    def _tensorboard(self, variant, epoch_scalars):
        """The TensorBoard callbacks of one fit: Keras's, and `EpochScalars` for `epoch_scalars`."""
        folder = self.tensorboard_dir(variant)
        if folder is None or not distribute.is_chief(self.config.strategy):
            return []  # in a multi-worker run the chief writes the logs
        import keras

        from models.training.callbacks import EpochScalars

        try:
            import tensorboard  # noqa: F401  tf.summary's scalars and histograms live there
        except ImportError:
            raise RunError(
                "`--tensorboard` needs the tensorboard package, which TensorFlow 2.21 does not "
                "install: `pip install tensorboard` (the package's own install brings it), or "
                "drop `--tensorboard`. Nothing was trained or exported."
            ) from None
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise RunError(
                f"Could not write TensorBoard logs under {self.config.tensorboard}: {error}. "
                "Pick a folder that can be written with `--tensorboard DIR`. Nothing was "
                "trained or exported."
            ) from None
        found = [keras.callbacks.TensorBoard(str(folder), histogram_freq=1, write_graph=False,
                                             profile_batch=0)]
        if epoch_scalars is not None:
            found.append(EpochScalars(folder / "train", epoch_scalars))
        return found

    def _open_checkpoint(self, model, x, y, validation_data, callbacks, variant, epochs,
                         batch_size):
        """The fit's `models.training.checkpoints.Checkpoint`, or `None` when it cannot keep one."""
        import keras

        from models.training import checkpoints

        config = self.config
        if not distribute.is_default(self.strategy):
            return None
        others = [type(c).__name__ for c in callbacks if not isinstance(c, resumable_callbacks())]
        if others:
            self.notes.append(f"No checkpoint{f' for {variant}' if variant else ''}: "
                              f"{', '.join(others)} keeps state a checkpoint does not save")
            return None
        arrays = [np.asarray(x), np.asarray(y)]
        if validation_data is not None:
            arrays += [np.asarray(v) for v in validation_data]
        key = {
            "recipe": config.recipe, "variant": variant, "epochs": epochs,
            "batch_size": batch_size, "data": bundled.fingerprint(*arrays),
            "model": _without_names(model.get_config()),
            "optimizer": _without_names(model.optimizer.get_config()),
            "options": {f.name: getattr(config, f.name) for f in dataclasses.fields(config)
                        if f.name not in _NOT_IN_RUN_KEY},
        }
        key = json.loads(json.dumps(key, default=str))
        stopper = next((c for c in callbacks if isinstance(c, keras.callbacks.EarlyStopping)),
                       None)
        name = config.recipe if variant is None else f"{config.recipe}-{variant}"
        folder = checkpoints.folder_for(config.output_dir, name, key)
        try:
            checkpoint = checkpoints.Checkpoint.open(
                folder, key=key, early_stopping=stopper, restart=config.restart)
        except checkpoints.CheckpointBusy as error:
            self.notes.append(f"No checkpoint: {error}; this run cannot be resumed")
            return None
        except OSError as error:
            self.notes.append(f"No checkpoint ({error}); this run cannot be resumed")
            return None
        self._checkpoints.append(checkpoint)
        return checkpoint

    def _resume_epoch(self, checkpoint, model, epochs, variant):
        """The epoch to start at: what an interrupted run saved, said aloud; 0 on a fresh start."""
        model.optimizer.build(model.trainable_variables)  # its variables, to check the saved ones
        if not checkpoint.fits(model):
            checkpoint.discard(f"the checkpoint in {checkpoint.folder} does not fit this model")
        if checkpoint.problem:
            self.notes.append(f"Starting afresh: {checkpoint.problem}")
        start = checkpoint.resume_epoch(epochs)
        if start:
            what = f" ({variant})" if variant else ""
            ended = " (training had ended)" if start == epochs else ""
            print(f"Resuming{what} from epoch {checkpoint.epoch} of {epochs}{ended}, saved by an "
                  f"interrupted run in {checkpoint.folder}; add --restart to start afresh.",
                  flush=True)
            self.notes.append(f"Resumed{what} from epoch {checkpoint.epoch} (checkpoint of an "
                              "interrupted run)")
        return start

    def _stop_if_diverged(self, losses, checkpoint, variant, epochs, model):
        """Raises `RunError` naming the epoch and the learning rate when a loss is not finite.

        The optimizer and learning rate named are the model's own (a lesson may
        compile its variants with others than `--optimizer` / `--learning-rate`).
        """
        bad = next((i for i, loss in enumerate(losses) if not math.isfinite(loss)), None)
        if bad is None:
            return
        config = self.config
        if checkpoint is not None:
            checkpoint.remove()  # resuming would diverge again
        which = f"Training the {variant!r} variant" if variant else "Training"
        penalty = (f" The L2 penalty ({config.l2:g}) is large too: try `--l2` below 1."
                   if config.l2 >= 1 else "")
        raise RunError(
            f"{which} diverged at epoch {bad + 1} of {epochs}: the loss became "
            f"{losses[bad]} (optimizer {_optimizer_name(model.optimizer)}, learning rate "
            f"{_learning_rate(model.optimizer):g}), and training stopped there. The learning rate is the "
            f"likely cause: try one ten times smaller with `--learning-rate`.{penalty} Nothing "
            "was exported."
        )

    # Evaluation, export, report ------------------------------------------------------

    def evaluate(self, model, data):
        """Test metrics of `model` (accuracy, AUC, …; MAE, RMSE, R² in the target's units)."""
        return _test_metrics(data.for_export(model), data)

    def finish(self, model, data, history, *, details=None, tables=(), figures=None,
               messages=()):
        """Scores `model` on the test split, exports it (unless `--no-export`), builds the `Result`.

        The exported model is `data.for_export(model)`: raw features in,
        predictions in the target's units. Its version folder also gets the
        history (CSV and PNG) and `figures`.

        Args:
            model: the trained model (the one `run.fit` trained).
            data: its `PreparedData`.
            history: what `run.fit` returned.
            details: the lesson's numbers for the report. Defaults to `None`.
            tables: extra `Table`s to print. Defaults to `()`.
            figures: `{"name.png": Figure}`. Defaults to `None`.
            messages: extra lines to print. Defaults to `()`.

        Returns:
            The run's `recipes.core.report.Result`.

        Raises:
            RunError: the export could not be written (the trained model is kept).
        """
        from recipes.core import plots

        config, split = self.config, data.split
        logs = history.history
        exported = data.for_export(model)  # scored, then exported: built once
        metrics = _test_metrics(exported, data)
        figures = {"history.png": plots.history(logs, f"{config.recipe}: training"),
                   **(figures or {})}
        export_path, export_seconds = None, 0.0
        if config.export and distribute.is_chief(config.strategy):  # one export per cluster
            export_started = time.perf_counter()
            try:
                export_path = self._export(model, exported, data, metrics, logs, figures)
            except KeyboardInterrupt as error:  # Ctrl-C or SIGTERM: the staging folder is gone
                if self._checkpoints:
                    for checkpoint in self._checkpoints:
                        checkpoint.release()
                    error.resume = (
                        f"{getattr(error, 'what', 'Interrupted')} while exporting; nothing was "
                        "exported. The trained model is kept: the same command exports it "
                        "without training again.")
                raise
            export_seconds = time.perf_counter() - export_started
        baselines = evaluation.baselines(data.task, data.encoded_split, data.n_classes)
        headline = ["accuracy", "auc"] if data.task != "regression" else ["mae", "rmse", "r2"]
        headline = [h for h in headline if h in metrics]
        rows = [[config.recipe, *(metrics[h] for h in headline)]]
        rows += [[name, *(scores.get(h, float("nan")) for h in headline)]
                 for name, scores in baselines.items()]
        distribution = self._distribution(model)
        resumed = getattr(history, "resumed_from", 0)
        all_details = {
            "device": self.device,
            "dataset": data.dataset.name,
            "rows": {"train": len(split.y_train), "validation": len(split.y_val),
                     "test": len(split.y_test)},
            "epochs_run": len(logs["loss"]),
            "steps_per_epoch": history.steps_per_epoch,
            "final_loss": logs["loss"][-1],
            "final_val_loss": logs["val_loss"][-1] if "val_loss" in logs else None,
            "baselines": baselines,
            **({"distribution": distribution} if distribution else {}),
            **({"resumed_from_epoch": resumed} if resumed else {}),
            **(details or {}),
        }
        for checkpoint in self._checkpoints:  # the run is complete
            checkpoint.remove()
        self._checkpoints.clear()
        return Result(
            recipe=config.recipe,
            metrics=metrics,
            details=all_details,
            timing={"train_seconds": self.train_seconds, "export_seconds": export_seconds,
                    "total_seconds": time.perf_counter() - self.started},
            export=export_path,
            tables=[Table("Against baselines (test split)", ["model", *headline], rows), *tables],
            figures=figures,
            history=logs,
            messages=[
                self.data_line(data),
                f"Model: {describe(model)}; {_optimizer_name(model.optimizer)}, learning rate "
                f"{_learning_rate(model.optimizer):g}, {len(logs['loss'])} epochs of "
                f"{history.steps_per_epoch} steps",
                f"Device: {self.device}",
                *self._distribution_lines(distribution),
                *self.notes,
                *messages,
            ],
        )

    def result(self, *, details, tables=(), figures=None, messages=(), data=None):
        """The `Result` of a lesson that exports nothing: its numbers, tables and figures."""
        for checkpoint in self._checkpoints:  # the run is complete
            checkpoint.remove()
        self._checkpoints.clear()
        return Result(
            recipe=self.config.recipe,
            details=details,
            timing={"train_seconds": self.train_seconds,
                    "total_seconds": time.perf_counter() - self.started},
            tables=list(tables),
            figures=figures or {},
            history=(self.histories[None] if list(self.histories) == [None]
                     else {str(k): v for k, v in self.histories.items()}),
            messages=[*([self.data_line(data)] if data is not None else []),
                      *([f"Device: {self._device}"] if self._device else []),
                      *self.notes, *messages],
        )

    @staticmethod
    def data_line(data):
        """`Data: …` in one line: where the rows come from and how they are split."""
        split = data.split
        return (f"Data: {data.dataset.description} ({len(split.y_train)} train / "
                f"{len(split.y_val)} validation / {len(split.y_test)} test rows)")

    def _export(self, model, exported, data, metrics, logs, figures):
        config = self.config

        def write_extra(folder):
            (folder / layout.HISTORY_FILE).write_text(history_csv(logs), encoding="utf-8")
            save_figures(figures, folder)

        import tensorflow as tf

        try:
            return str(savedmodel.export(
                exported, output_dir=config.output_dir, name=config.recipe, task=data.task,
                class_names=data.class_names, metadata=self._metadata(model, data, metrics, logs),
                write_extra=write_extra, check_feed=data.check_feed(),
            ))
        except (OSError, tf.errors.OpError) as error:  # TensorFlow's writes raise OpError
            for checkpoint in self._checkpoints:
                checkpoint.release()
            kept = bool(self._checkpoints) and all(
                c.save_error is None and c.epoch_saved for c in self._checkpoints)
            where = f"{config.output_dir}/{config.recipe}"
            full = _disk_full(error)
            cause = (f"the disk is full ({full}); free some space there"
                     if full else f"{_error_text(error)}")
            raise RunError(
                f"Could not write the model under {where}: {cause}. Nothing was exported (no "
                "version folder was left). "
                + ("The trained model is kept: once the folder can be written, the same command "
                   "exports it without training again." if kept else
                   "Free some space or pick a writable folder with `--output-dir`, then run "
                   "again.")
            ) from None

    def _metadata(self, model, data, metrics, logs):
        """The `metadata.json` fields a training run knows (the export adds the rest)."""
        config, dataset = self.config, data.dataset
        return {
            "recipe": config.recipe,
            "feature_names": list(dataset.feature_names),
            "inputs": data.input_layout,
            "features": data.describe_features(),
            "target": dataset.target,
            "metrics": metrics,
            "hyperparameters": {
                "architecture": describe(model),
                "hidden": list(config.hidden), "optimizer": _optimizer_name(model.optimizer),
                "learning_rate": _learning_rate(model.optimizer),
                "epochs": config.epochs, "epochs_run": len(logs["loss"]),
                "batch_size": config.batch_size, "l2": config.l2, "dropout": config.dropout,
                "patience": config.patience, "seed": config.seed,
            },
            "dataset": {
                "name": dataset.name, "rows": int(len(dataset.y)), "sha256": dataset.sha256,
                "description": dataset.description,
                "split": {"train": len(data.split.y_train), "validation": len(data.split.y_val),
                          "test": len(data.split.y_test)},
            },
            "device": self.device,
        }

    def _distribution(self, model):
        if distribute.is_default(self.strategy):
            return None
        return {**distribute.describe(self.strategy),
                "weights_sha256": bundled.fingerprint(*model.get_weights())}

    @staticmethod
    def _distribution_lines(where):
        if not where:
            return []
        task = f"; this process is {where['task']}" if where["task"] else ""
        role = "" if where["chief"] else ", not the chief: it exports and saves no figures"
        return [f"Strategy: {where['strategy']}, {where['replicas']} replica(s) on "
                f"{where['workers']} worker(s){task}{role}"]


_DISK_FULL = {errno.ENOSPC: "no space left on the device", errno.EDQUOT: "the disk quota is used up",
              errno.EFBIG: "a file reached this process's size limit, `ulimit -f`"}
"""The `errno`s of a write that found no room, in words."""


def _disk_full(error):
    """The words for a write that found no room on the disk, or `None` for another error.

    `OSError` carries an `errno`; TensorFlow's `OpError` only the C library's message.
    """
    if isinstance(error, OSError):
        return _DISK_FULL.get(error.errno)
    text = str(error)
    return next((words for code, words in _DISK_FULL.items() if os.strerror(code) in text), None)


def _error_text(error):
    """An `OSError` or a TensorFlow `OpError` in one line, with the file it names."""
    if isinstance(error, OSError):
        return str(error)
    return " ".join(str(getattr(error, "message", error)).split())


def check_outputs(config):
    """Refuses, before anything trains, output folders that cannot be written.

    The export's folder `--output-dir/NAME` (where the figures go too when there
    is no `--report`) and the report's folder: each, or the nearest part of its
    path that exists, must be a folder that takes a new file (tried: a temporary
    file is made and removed, so read-only mounts, permissions and ACLs all
    count). Nothing is created.

    Args:
        config: the run's `recipes.core.options.RunConfig`.

    Raises:
        RunError: a folder cannot be written; the message names it and the fix.
    """
    from pathlib import Path

    try:
        chief = distribute.is_chief(config.strategy)
    except distribute.DistributeError:
        chief = True  # the run reports the bad TF_CONFIG itself, in its own words
    folders = []
    if chief and (config.export or not config.report):
        folders.append((Path(config.output_dir) / config.recipe, "--output-dir DIR"))
    if config.report:
        folders.append((Path(config.report).parent, "--report FILE"))
    for folder, option in folders:
        problem = _unwritable(folder)
        if problem:
            cause, fix = problem
            raise RunError(
                f"The output folder {folder} cannot be written: {cause}. To fix it, {fix}, or "
                f"pick another folder with `{option}`. Nothing was trained or exported."
            )


def _unwritable(folder):
    """`(cause, fix)` when `folder` (there or still to be made) cannot take new files; else `None`."""
    existing = next(p for p in (folder, *folder.parents) if p.exists() or p.is_symlink())
    if not existing.is_dir():
        what = "a file" if existing.is_file() else "not a folder"
        return f"{existing} is {what} where a folder should be", "move or delete it"
    try:
        handle, probe = tempfile.mkstemp(prefix=".write-check-", dir=existing)
    except OSError as error:
        return (f"{existing} does not take new files ({error.strerror})",
                f"make it writable (`chmod u+w {existing}`, or remount it read-write)")
    os.close(handle)
    os.unlink(probe)
    return None


def _keep_features(dataset, names):
    """`dataset` with only the feature columns `names`, in that order (a new sha256)."""
    columns = [dataset.feature_names.index(name) for name in names]
    x = np.ascontiguousarray(dataset.x[:, columns])
    return dataclasses.replace(
        dataset, x=x, feature_names=list(names), sha256=bundled.fingerprint(x, dataset.y),
        description=f"{dataset.description}; features kept: {', '.join(names)}")


def _test_metrics(exported, data):
    """Test metrics of an exported model (`data.for_export(...)`) on the raw test rows."""
    from models.training import loop

    outputs = loop.predict(exported, data.export_feed(data.split.x_test))
    return evaluation.metrics(data.task, data.split.y_test, outputs, data.n_classes)


def _check_finite(dataset):
    """Refuses data with NaN or infinite values before anything trains."""
    for what, values in (("feature", dataset.x), ("target", dataset.y)):
        values = np.asarray(values)
        if np.issubdtype(values.dtype, np.floating):
            bad = int(np.size(values) - np.count_nonzero(np.isfinite(values)))
            if bad:
                raise RunError(
                    f"The data set {dataset.name} holds {bad} NaN or infinite {what} "
                    "value(s); a single one turns the loss into NaN. Replace them with finite "
                    "numbers or remove those rows. Nothing was trained or exported."
                )


def _without_names(config):
    """A Keras config with every `name` (which Keras numbers per process) left out."""
    if isinstance(config, dict):
        return {k: _without_names(v) for k, v in config.items() if k != "name"}
    if isinstance(config, (list, tuple)):
        return [_without_names(v) for v in config]
    return config


def _learning_rate(optimizer):
    """The optimizer's learning rate as a float (a plain or a `tf.distribute` variable)."""
    return float(np.asarray(optimizer.learning_rate.value if hasattr(optimizer.learning_rate, "value")
                            else optimizer.learning_rate))


def _optimizer_name(optimizer):
    """`adam`, `sgd`, `momentum` (SGD with momentum), …, as the CLI names them."""
    name = type(optimizer).__name__.lower()
    if name == "sgd" and float(optimizer.momentum or 0) > 0:
        return "momentum"
    return name


def describe(model):
    """The network in one line, e.g. `30 -> 16 relu -> 8 relu -> 1 sigmoid`.

    A linear `Dense` followed by an `Activation` layer (z and f(z) as two layers)
    is named by that activation.
    """
    import keras

    parts = [str(model.inputs[0].shape[-1])]
    for layer in _flat_layers(model):
        if isinstance(layer, keras.layers.Dense):
            parts.append([layer.units, layer.activation.__name__])
        elif (isinstance(layer, keras.layers.Activation) and len(parts) > 1
              and parts[-1][1] == "linear"):
            parts[-1][1] = layer.activation.__name__
    return " -> ".join([parts[0], *(f"{units} {name}" for units, name in parts[1:])])


def _flat_layers(model):
    """The layers of `model`, nested models' (a wrapped `Sequential`) spelled out, in order."""
    for layer in model.layers:
        if hasattr(layer, "layers"):
            yield from _flat_layers(layer)
        else:
            yield layer


def history_csv(history):
    """The per-epoch logs as CSV text, one row per epoch."""
    keys = list(history)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["epoch", *keys])
    for i in range(len(history[keys[0]])):
        writer.writerow([i + 1, *(f"{history[k][i]:.6g}" for k in keys)])
    return out.getvalue()


@contextlib.contextmanager
def _stopping_on_signals(stops):
    """Inside: SIGINT and SIGTERM ask every fit to stop (`StopWhenAsked.ask`) instead of acting.

    Yields `{"signal": the first one caught or None, "handlers": the ones before}`
    for `_interrupted`. A second signal acts at once, as its handler before would
    have. In a thread other than the main one, where handlers cannot be set,
    signals act as usual.
    """
    from models.training.checkpoints import deliver

    caught = {"signal": None, "handlers": {}}

    def restore():
        for signum, before in caught["handlers"].items():
            signal.signal(signum, before)

    def catch(signum, frame):
        if caught["signal"] is not None:  # a second one: stop now
            restore()
            deliver(signum, caught["handlers"][signum])
            return
        caught["signal"] = signum
        for stop in stops:
            stop.ask()

    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            before = signal.getsignal(signum)
            if before not in (signal.SIG_IGN, None):  # ignored (nohup), or not set from Python
                caught["handlers"][signum] = before
                signal.signal(signum, catch)
    try:
        yield caught
    finally:
        restore()


def _interrupted(failures, caught):
    """Stops the run as the signal `caught` would have, with one line on what is saved."""
    from models.training.checkpoints import deliver

    signum = caught["signal"]
    if signum is None:
        raise failures[0]
    saved = [error.saved for error in failures if getattr(error, "saved", None)]
    try:
        deliver(signum, caught["handlers"].get(signum, signal.SIG_DFL))
    except KeyboardInterrupt as error:
        if saved:
            epochs = ", ".join(f"{n} epoch(s) of {variant}" for variant, n, _ in saved)
            error.resume = (  # the CLI's one line, as `Run.fit` gives it
                f"{getattr(error, 'what', 'Interrupted')}: {epochs} are saved in "
                f"{saved[0][2].parent}; the same command resumes from there (add --restart "
                "to start afresh).")
        raise
    raise KeyboardInterrupt  # a handler that did not raise: the fits have stopped all the same
