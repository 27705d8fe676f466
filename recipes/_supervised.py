"""The path every training recipe shares: data, split, model, training, test, export.

`train(config, ...)` does the work and returns a `Trained` bundle (model, split,
history, metrics) so that a lesson recipe can add its own numbers; `finish`
exports it and turns it into the `Result` the CLI prints. `run` is both in one
call, which is all the four supervised recipes need.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import io
import math
import shlex
import sys
import time
from dataclasses import dataclass

import keras
import numpy as np

from models import checkpoints, data, devices, distribute, evaluation, export, mlp, training
from recipes import _plots
from recipes.errors import RunError, UsageError
from recipes.report import Result, Table


@dataclass
class Trained:
    """A trained model with everything needed to report and export it."""

    config: object
    dataset: data.Dataset
    split: data.Split
    model: keras.Model
    head: str
    activation: str
    history: dict
    steps_per_epoch: int
    metrics: dict
    device: str
    train_seconds: float
    started: float
    distribution: dict | None = None
    notes: tuple = ()
    resumed_from: int = 0

    @property
    def task(self):
        return self.dataset.task


_CSV_TASKS = {"sigmoid": "binary", "softmax": "multiclass", "relu": "positive",
              "linear": "regression"}
"""Output head -> what a CSV target must be for it (`models.tables.TASKS`)."""

_RECIPE_FOR = {"binary": "binary-sigmoid", "multiclass": "multiclass-softmax",
               "regression": "leaky-relu-regression", "positive": "relu-regression"}
"""The recipe to suggest for data that fit a task."""


def load_data(config, default, head=None):
    """The configured data: the user's CSV (`--data`) or the recipe's bundled set.

    The recipe fixes the scenario: a CSV target must fit its output head (two
    classes for `sigmoid`, three or more for `softmax`, numbers for `linear`,
    numbers >= 0 for `relu`), or the run stops before training and names the
    recipe that fits.

    Args:
        config: the run's `RunConfig`; `data`, `target` and `drop` choose the CSV.
        default: the bundled data set's name (`models.data.BUNDLED`), used without `--data`.
        head: the model's output head (`models.mlp.HEADS`). Defaults to `None`: the
            CSV must fit the default data set's task.

    Raises:
        UsageError: no such file, or a `--target` / `--drop` column the file lacks.
        RunError: a file that cannot be used as it is (the message names the fix).
    """
    if config.data is None:
        return data.load(default)
    from models import tables

    task = _CSV_TASKS[head] if head is not None else data.load(default).task
    try:
        return tables.read_csv(config.data, config.target, task=task, drop=config.drop)
    except (FileNotFoundError, tables.UnknownColumn) as error:
        raise UsageError(str(error)) from None
    except tables.TaskMismatch as error:
        fits = _RECIPE_FOR[error.fits]
        words = ["--data", config.data, "--target", config.target]
        words += [w for column in config.drop for w in ("--drop", column)]
        raise RunError(
            f"{error} The `{fits}` recipe fits these data: `python -m recipes.run {fits} "
            f"{shlex.join(words)}`. Nothing was trained or exported."
        ) from None
    except data.DataError as error:
        raise RunError(f"{error} Nothing was trained or exported.") from None


def prepare(config):
    """Selects the device and the strategy, seeds everything; returns the device in words."""
    try:
        device = devices.select(config.device)
    except devices.DeviceError as error:
        raise RunError(str(error)) from None
    strategy_for(config)  # before any TensorFlow work, which multi-worker requires
    # Python, NumPy and TensorFlow seeds: on a CPU the same command gives the same weights,
    # bit for bit, in any process (tests/test_reliability.py). Not
    # `tf.config.experimental.enable_op_determinism()`: the CPU kernels these models use are
    # deterministic already; it is process-wide and permanent, made dropout epochs at batch
    # size 1 about 30% slower (digits, 64-32 MLP: 120-133 -> 165-174 ms), draws other
    # dropout masks, and on a GPU refuses ops without a deterministic kernel.
    keras.utils.set_random_seed(config.seed)
    return device


def strategy_for(config):
    """The run's `tf.distribute` strategy (`--strategy`), made before any TensorFlow work."""
    try:
        return distribute.get_strategy(config.strategy)
    except distribute.DistributeError as error:
        raise RunError(str(error)) from None


def train(config, *, head, dataset, activation="relu", hidden=None, callbacks=(), verbose=1):
    """Trains one MLP as `config` says and scores it on the test split.

    Args:
        config: the run's `RunConfig`.
        head: the output head (`models.mlp.HEADS`).
        dataset: the default bundled data set's name (`models.data.BUNDLED`).
        activation: hidden-layer activation. Defaults to `"relu"`.
        hidden: hidden sizes, overriding `config.hidden`. Defaults to `None`.
        callbacks: extra Keras callbacks. Defaults to `()`.
        verbose: `1` prints one line (or a bar) per epoch. Defaults to `1`.

    Returns:
        A `Trained` bundle.

    Raises:
        RunError: no such device, data that do not fit, or a diverging loss.
    """
    started = time.perf_counter()
    device = prepare(config)
    strategy = strategy_for(config)
    mixed = config.mixed_precision and device.startswith("GPU")
    notes = []
    if config.mixed_precision:
        notes.append("Mixed precision: mixed_float16 (hidden layers float16, outputs float32)"
                     if mixed else "--mixed-precision ignored: it speeds up GPUs only, and "
                     "this run is on the CPU")
    dataset = load_data(config, dataset, head)
    _check_finite(dataset)
    try:
        split = data.split(dataset, config.seed)
    except data.DataError as error:
        raise RunError(str(error)) from None
    scale = mlp.target_scale(head, split.y_train)
    hidden = config.hidden if hidden is None else hidden
    # A run resumes when nothing of its state lives outside the model, the optimizer and
    # early stopping: extra callbacks (a lesson's recorders) would lose what they recorded.
    resumable = not callbacks and distribute.is_default(strategy)
    callbacks = list(callbacks)
    stopper = None
    if config.patience:
        stopper = keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=config.patience, restore_best_weights=True)
        callbacks.append(stopper)
    callbacks.append(training.TerminateOnNonFinite())
    checkpoint = None
    if resumable:
        checkpoint = _open_checkpoint(config, dataset, notes, head=head, activation=activation,
                                      hidden=hidden, stopper=stopper)
    # The model and its optimizer live under the strategy; one device trains with the
    # fast loop, several with the distributed one (same loss, metrics and callbacks).
    fit = training.fit
    if not distribute.is_default(strategy):
        fit = functools.partial(distribute.fit, strategy=strategy)
    with strategy.scope():
        with distribute.precision_policy(mixed):
            model = mlp.build(
                split.x_train, head=head, n_outputs=dataset.n_classes if head == "softmax" else 1,
                hidden=hidden, activation=activation,
                l2=config.l2, dropout=config.dropout, target_scale=scale,
                name=config.recipe.replace("-", "_"),
            )
            training.compile(model, head=head, optimizer=config.optimizer,
                             learning_rate=config.learning_rate, target_scale=scale)
        resume = {}
        if checkpoint is not None:
            resume["initial_epoch"] = _resume_epoch(checkpoint, model, config, notes)
            callbacks.append(checkpoint)  # last: it records early stopping's decisions
        fit_started = time.perf_counter()
        try:
            history = fit(
                model, split.x_train, split.y_train, epochs=config.epochs,
                batch_size=config.batch_size, validation_data=(split.x_val, split.y_val),
                callbacks=callbacks, seed=config.seed, verbose=verbose, **resume,
            )
        except BaseException as error:
            if checkpoint is not None:
                checkpoint.release()
                if isinstance(error, KeyboardInterrupt) and checkpoint.epoch_saved:
                    print(f"Interrupted: {checkpoint.epoch_saved} epoch(s) are saved in "
                          f"{checkpoint.folder}; the same command resumes from there "
                          "(add --restart to start afresh).", file=sys.stderr, flush=True)
            raise
    train_seconds = time.perf_counter() - fit_started
    full_history = checkpoint.merge(history.history) if checkpoint else history.history
    _stop_if_diverged(config, full_history["loss"], checkpoint)
    outputs = training.predict(model, split.x_test)
    metrics = evaluation.metrics(dataset.task, split.y_test, outputs, dataset.n_classes)
    return Trained(
        config=config, dataset=dataset, split=split, model=model, head=head,
        activation=activation, history=full_history, steps_per_epoch=history.steps_per_epoch,
        metrics=metrics, device=device, train_seconds=train_seconds, started=started,
        distribution=None if distribute.is_default(strategy) else {
            **distribute.describe(strategy),
            "weights_sha256": data.fingerprint(*model.get_weights()),
        },
        notes=tuple(notes), resumed_from=checkpoint.epoch if resume.get("initial_epoch") else 0,
    )


_NOT_IN_RUN_KEY = ("output_dir", "report", "no_export", "restart", "debug", "verbose")
"""`RunConfig` fields that do not change what is trained, so not part of a run's key."""

_OPEN_CHECKPOINTS = []
"""The checkpoints of this process's trainings, removed when their run completes (`finish`)."""


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


def _open_checkpoint(config, dataset, notes, *, head, activation, hidden, stopper):
    """The run's `models.checkpoints.Checkpoint`, or `None` when it cannot keep one."""
    key = {
        "recipe": config.recipe, "head": head, "activation": activation, "hidden": list(hidden),
        "dataset": {"name": dataset.name, "sha256": dataset.sha256},
        "options": {f.name: getattr(config, f.name) for f in dataclasses.fields(config)
                    if f.name not in _NOT_IN_RUN_KEY},
    }
    folder = checkpoints.folder_for(config.output_dir, config.recipe, key)
    try:
        checkpoint = checkpoints.Checkpoint.open(
            folder, key=key, early_stopping=stopper, restart=config.restart)
    except checkpoints.CheckpointBusy as error:
        notes.append(f"No checkpoint: {error}; this run cannot be resumed")
        return None
    except OSError as error:
        notes.append(f"No checkpoint ({error}); this run cannot be resumed")
        return None
    _OPEN_CHECKPOINTS.append((config.recipe, config.output_dir, checkpoint))
    return checkpoint


def _resume_epoch(checkpoint, model, config, notes):
    """The epoch to start at: what an interrupted run saved, said aloud; 0 on a fresh start."""
    model.optimizer.build(model.trainable_variables)  # its variables, to check the saved ones
    if not checkpoint.fits(model):
        checkpoint.discard(f"the checkpoint in {checkpoint.folder} does not fit this model")
    if checkpoint.problem:
        notes.append(f"Starting afresh: {checkpoint.problem}")
    start = checkpoint.resume_epoch(config.epochs)
    if start:
        ended = " (training had ended: testing and exporting)" if start == config.epochs else ""
        print(f"Resuming from epoch {checkpoint.epoch} of {config.epochs}{ended}, saved by an "
              f"interrupted run in {checkpoint.folder}; add --restart to start afresh.",
              flush=True)
        notes.append(f"Resumed from epoch {checkpoint.epoch} (checkpoint of an interrupted run)")
    return start


def _stop_if_diverged(config, losses, checkpoint):
    """Raises `RunError` naming the epoch and the learning rate when a loss is not finite."""
    bad = next((i for i, loss in enumerate(losses) if not math.isfinite(loss)), None)
    if bad is None:
        return
    if checkpoint is not None:
        checkpoint.remove()  # resuming would diverge again
    penalty = (f" The L2 penalty ({config.l2:g}) is large too: try `--l2` below 1."
               if config.l2 >= 1 else "")
    raise RunError(
        f"Training diverged at epoch {bad + 1} of {config.epochs}: the loss became "
        f"{losses[bad]} (optimizer {config.optimizer}, learning rate "
        f"{config.learning_rate:g}), and training stopped there. The learning rate is the "
        f"likely cause: try one ten times smaller with `--learning-rate`.{penalty} Nothing was "
        "exported."
    )


def _export_failed(config, error):
    """The message of an export that could not be written; the trained model is kept."""
    kept = [e[2] for e in _OPEN_CHECKPOINTS if e[:2] == (config.recipe, config.output_dir)]
    for checkpoint in kept:
        checkpoint.release()
    where = f"{config.output_dir}/{config.recipe}"
    return (
        f"Could not write the model under {where}: {error}. Nothing was exported. "
        + ("The trained model is kept: once the folder can be written, the same command "
           "exports it without training again." if kept else
           "Free some space or pick a writable folder with `--output-dir`, then run again.")
    )


def _close_checkpoints(config):
    """Removes the checkpoints of this run's trainings: the run is complete."""
    for entry in [e for e in _OPEN_CHECKPOINTS if e[:2] == (config.recipe, config.output_dir)]:
        entry[2].remove()
        _OPEN_CHECKPOINTS.remove(entry)


def history_csv(history):
    """The per-epoch logs as CSV text, one row per epoch."""
    keys = list(history)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["epoch", *keys])
    for i in range(len(history[keys[0]])):
        writer.writerow([i + 1, *(f"{history[k][i]:.6g}" for k in keys)])
    return out.getvalue()


def describe(trained):
    """The model in one line, e.g. `30 -> 16 relu -> 8 relu -> 1 sigmoid`."""
    sizes = [layer.units for layer in trained.model.layers if isinstance(layer, keras.layers.Dense)]
    parts = [str(trained.dataset.x.shape[1])]
    parts += [f"{u} {trained.activation}" for u in sizes[:-1]] + [f"{sizes[-1]} {trained.head}"]
    return " -> ".join(parts)


def metadata(trained):
    """The `metadata.json` fields a training run knows (export adds the rest)."""
    config, dataset = trained.config, trained.dataset
    return {
        "recipe": config.recipe,
        "feature_names": list(dataset.feature_names),
        "target": dataset.target,
        "metrics": trained.metrics,
        "hyperparameters": {
            "hidden": list(config.hidden), "activation": trained.activation, "head": trained.head,
            "optimizer": config.optimizer, "learning_rate": config.learning_rate,
            "epochs": config.epochs, "epochs_run": len(trained.history["loss"]),
            "batch_size": config.batch_size, "l2": config.l2, "dropout": config.dropout,
            "patience": config.patience, "seed": config.seed,
        },
        "dataset": {
            "name": dataset.name, "rows": int(len(dataset.y)), "sha256": dataset.sha256,
            "description": dataset.description,
            "split": {"train": len(trained.split.y_train), "validation": len(trained.split.y_val),
                      "test": len(trained.split.y_test)},
        },
        "device": trained.device,
    }


def finish(trained, *, details=None, tables=(), figures=None, messages=()):
    """Exports the trained model (unless `--no-export`) and builds the run's `Result`.

    The history (CSV and PNG) and `figures` go into the version folder.
    """
    config, dataset, split = trained.config, trained.dataset, trained.split
    figures = {"history.png": _plots.history(trained.history, f"{config.recipe}: training"),
               **(figures or {})}
    export_path, export_seconds = None, 0.0
    if config.export and distribute.is_chief(config.strategy):  # one export per cluster
        from recipes.report import save_figures

        def write_extra(folder):
            (folder / "history.csv").write_text(history_csv(trained.history), encoding="utf-8")
            save_figures(figures, folder)

        export_started = time.perf_counter()
        try:
            export_path = str(export.export(
                trained.model, output_dir=config.output_dir, name=config.recipe,
                task=dataset.task, class_names=dataset.class_names, metadata=metadata(trained),
                write_extra=write_extra,
            ))
        except OSError as error:  # a full disk, a read-only or misnamed folder
            raise RunError(_export_failed(config, error)) from None
        export_seconds = time.perf_counter() - export_started
    baselines = evaluation.baselines(dataset.task, split, dataset.n_classes)
    headline = ["accuracy", "auc"] if dataset.task != "regression" else ["mae", "rmse", "r2"]
    headline = [h for h in headline if h in trained.metrics]
    rows = [[config.recipe, *(trained.metrics[h] for h in headline)]]
    rows += [[name, *(scores.get(h, float("nan")) for h in headline)] for name, scores in baselines.items()]
    all_details = {
        "device": trained.device,
        "dataset": dataset.name,
        "rows": {"train": len(split.y_train), "validation": len(split.y_val), "test": len(split.y_test)},
        "epochs_run": len(trained.history["loss"]),
        "steps_per_epoch": trained.steps_per_epoch,
        "final_loss": trained.history["loss"][-1],
        "final_val_loss": trained.history["val_loss"][-1],
        "baselines": baselines,
        **({"distribution": trained.distribution} if trained.distribution else {}),
        **({"resumed_from_epoch": trained.resumed_from} if trained.resumed_from else {}),
        **(details or {}),
    }
    _close_checkpoints(config)
    return Result(
        recipe=config.recipe,
        metrics=trained.metrics,
        details=all_details,
        timing={"train_seconds": trained.train_seconds, "export_seconds": export_seconds,
                "total_seconds": time.perf_counter() - trained.started},
        export=export_path,
        tables=[Table("Against baselines (test split)", ["model", *headline], rows), *tables],
        figures=figures,
        messages=[
            f"Data: {dataset.description} ({len(split.y_train)} train / {len(split.y_val)} "
            f"validation / {len(split.y_test)} test rows)",
            f"Model: {describe(trained)}; {config.optimizer}, learning rate {config.learning_rate:g}, "
            f"{len(trained.history['loss'])} epochs of {trained.steps_per_epoch} steps",
            f"Device: {trained.device}",
            *_distribution_messages(trained),
            *messages,
        ],
    )


def _distribution_messages(trained):
    """What the run was spread over, and notes on ignored options, one line each."""
    lines = list(trained.notes)
    where = trained.distribution
    if where:
        task = f"; this process is {where['task']}" if where["task"] else ""
        role = "" if where["chief"] else ", not the chief: it exports and saves no figures"
        lines.insert(0, f"Strategy: {where['strategy']}, {where['replicas']} replica(s) on "
                        f"{where['workers']} worker(s){task}{role}")
    return lines


def run(config, *, head, dataset, activation="relu"):
    """Trains, tests and exports one MLP; the whole of a supervised recipe."""
    return finish(train(config, head=head, dataset=dataset, activation=activation))
