"""Keras callbacks of the training path: stop at a target, stop on NaN, show progress.

The notes give two early-stopping rules (ERRATA #16). The second, "check
the validation log-loss, stop when it gets worse and use the earlier model", is
Keras's own `EarlyStopping(monitor="val_loss", patience=N,
restore_best_weights=True)`. The first, "set the criterion Accuracy = 0.9 and
stop once it is met", is `StopAtTarget` here.

Both act at epoch ends only, so they work with `model.fit` and with
`models.training.fit` (which calls callbacks at train and epoch boundaries).
`TerminateOnNonFinite` is Keras's `TerminateOnNaN` at epoch ends,
`EpochLogger` the progress line (or bar) `models.training.fit` shows, and
`EpochScalars` writes what a lesson measures after each epoch to TensorBoard,
and `StopWhenAsked` is Ctrl-C for a fit in another thread.
"""

from __future__ import annotations

import math
import numbers
import sys

import keras

MAXIMIZED = ("accuracy", "acc", "binary_accuracy", "categorical_accuracy",
             "sparse_categorical_accuracy", "top_k_categorical_accuracy", "auc",
             "precision", "recall", "r2_score")
"""Metric names (without `val_`) that improve upwards; `mode="auto"` stops at >= target."""

MINIMIZED = ("loss", "mae", "mse", "rmse", "mean_absolute_error", "mean_squared_error",
             "root_mean_squared_error", "binary_crossentropy", "categorical_crossentropy",
             "sparse_categorical_crossentropy")
"""Metric names (without `val_`) that improve downwards; `mode="auto"` stops at <= target."""

FRACTIONS = ("accuracy", "acc", "binary_accuracy", "categorical_accuracy",
             "sparse_categorical_accuracy", "top_k_categorical_accuracy", "auc",
             "precision", "recall")
"""Metrics that are fractions: their target must lie in [0, 1]."""

MODES = ("auto", "max", "min")


class StopAtTarget(keras.callbacks.Callback):
    """Stop training at the first epoch where a monitored metric reaches a target.

    The notes' first early-stopping rule: "set the early stopping criteria as
    Accuracy = 0.9 ... once the criteria has been met, the model will stop
    training". At the end of every epoch the callback reads `monitor` from the
    epoch's logs; in `"max"` mode training stops once it is `>= target`, in
    `"min"` mode once it is `<= target`. The model keeps the weights of that
    epoch (the one that reached the target). If no epoch reaches the target,
    training runs all its epochs and `stopped_epoch` stays `None`.

    Unlike `keras.callbacks.EarlyStopping`, which waits for a metric to stop
    improving, this rule needs a target chosen in advance, and it stops on a
    lucky epoch as readily as on a good model: monitor a validation metric.

    Args:
        monitor: the logged quantity to watch, e.g. `"val_accuracy"` or
            `"val_loss"`. Validation metrics need validation data.
            Defaults to `"val_accuracy"`.
        target: the value to reach. Fractions (accuracy, AUC, precision,
            recall) need a target in [0, 1]. Defaults to `0.9`.
        mode: one of `{"auto", "max", "min"}`. `"max"` stops when `monitor >=
            target`, `"min"` when `monitor <= target`; `"auto"` infers the
            direction from the metric's name (up for accuracy-like metrics,
            down for losses and errors). Defaults to `"auto"`.
        verbose: `1` prints a line when training stops, `0` is silent.
            Defaults to `0`.

    Attributes:
        stopped_epoch: the 0-based index of the epoch that reached the target,
            or `None` if none did (yet).
        reached: the monitored value at that epoch, or `None`.

    Raises:
        ValueError: an argument out of range, at construction; a `monitor`
            missing from the logs, or a direction `"auto"` cannot infer,
            when training starts.

    Example:

    >>> import keras, numpy as np
    >>> from models.training.callbacks import StopAtTarget
    >>> keras.utils.set_random_seed(0)
    >>> x = np.random.default_rng(0).normal(size=(256, 2)).astype("float32")
    >>> y = (x[:, 0] + x[:, 1] > 0).astype("int64")
    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1, activation="sigmoid")])
    >>> model.compile(optimizer=keras.optimizers.Adam(0.05), loss="binary_crossentropy",
    ...               metrics=["accuracy"])
    >>> stop = StopAtTarget(monitor="accuracy", target=0.95)
    >>> history = model.fit(x, y, epochs=50, batch_size=32, callbacks=[stop], verbose=0)
    >>> len(history.history["loss"]) == stop.stopped_epoch + 1 < 50
    True
    >>> history.history["accuracy"][-1] >= 0.95 > max(history.history["accuracy"][:-1])
    True
    """

    def __init__(self, monitor="val_accuracy", target=0.9, mode="auto", verbose=0):
        super().__init__()
        if not isinstance(monitor, str) or not monitor:
            raise ValueError(
                "`monitor` must be the name of a logged metric, e.g. 'val_accuracy'. "
                f"Received: monitor={monitor!r}"
            )
        if (isinstance(target, bool) or not isinstance(target, numbers.Real)
                or not math.isfinite(target)):
            raise ValueError(f"`target` must be a finite number. Received: target={target!r}")
        if mode not in MODES:
            raise ValueError(
                f"`mode` must be one of 'auto', 'max' or 'min'. Received: mode={mode!r}"
            )
        if verbose not in (0, 1):
            raise ValueError(f"`verbose` must be 0 or 1. Received: verbose={verbose!r}")
        name = monitor.removeprefix("val_")
        if name in FRACTIONS and not 0 <= target <= 1:
            raise ValueError(
                f"`target` must be in [0, 1] for monitor={monitor!r}, a fraction. "
                f"Received: target={target!r}"
            )
        self.monitor = monitor
        self.target = float(target)
        self.mode = mode
        self.verbose = verbose
        self.direction = mode if mode != "auto" else _direction_from_name(name)
        self.stopped_epoch = None
        self.reached = None

    def on_train_begin(self, logs=None):
        self.stopped_epoch = None
        self.reached = None
        if self.direction is None:
            self.direction = _direction_from_model(self.model, self.monitor.removeprefix("val_"))
        if self.direction is None:
            raise ValueError(
                f"StopAtTarget received monitor={self.monitor!r}, but cannot tell whether "
                "that metric should rise or fall to reach its target. Pass `mode='max'` to "
                "stop once it is >= target, or `mode='min'` to stop once it is <= target."
            )

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.monitor not in logs:
            raise ValueError(
                f"StopAtTarget's monitor={self.monitor!r} is not in the logs of epoch "
                f"{epoch + 1}. Logged: {', '.join(logs) or 'nothing'}. Monitor one of these "
                "(`val_` metrics need validation data)."
            )
        value = float(logs[self.monitor])
        reached = value >= self.target if self.direction == "max" else value <= self.target
        if reached:
            self.stopped_epoch = epoch
            self.reached = value
            self.model.stop_training = True
            if self.verbose:
                sign = ">=" if self.direction == "max" else "<="
                print(f"Epoch {epoch + 1}: {self.monitor} = {value:.4f} {sign} target "
                      f"{self.target:g}; stopping.")

    def get_config(self):
        return {"monitor": self.monitor, "target": self.target, "mode": self.mode,
                "verbose": self.verbose}


def _direction_from_name(name):
    if name in MAXIMIZED:
        return "max"
    if name in MINIMIZED:
        return "min"
    return None


def _direction_from_model(model, name):
    """Asks the model's compiled metrics which way `name` improves, as Keras does."""
    metrics = []
    for metric in getattr(model, "metrics", []) or []:
        metrics += list(getattr(metric, "metrics", [])) or [metric]
    for metric in metrics:
        if metric.name == name and getattr(metric, "_direction", None) in ("up", "down"):
            return "max" if metric._direction == "up" else "min"
    return None


class EpochLogger(keras.callbacks.Callback):
    """Shows progress once per epoch: a Keras progress bar on a terminal, else one line.

    Args:
        epochs: the number of epochs planned.
        stream: where to write. Defaults to `sys.stdout`.
    """

    def __init__(self, epochs, stream=None):
        super().__init__()
        self.epochs = epochs
        self.stream = stream or sys.stdout
        self._bar = None

    def on_train_begin(self, logs=None):
        self._bar = keras.utils.Progbar(self.epochs, unit_name="epoch") if self.stream.isatty() else None

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self._bar is not None:
            self._bar.update(epoch + 1, values=list(logs.items()))
        else:
            values = " - ".join(f"{k}: {v:.4f}" for k, v in logs.items())
            self.stream.write(f"Epoch {epoch + 1}/{self.epochs} - {values}\n")
            self.stream.flush()


class TerminateOnNonFinite(keras.callbacks.Callback):
    """Stops training at the end of the epoch whose loss is NaN or infinite.

    Keras's `TerminateOnNaN` acts on batch ends, which `fit` does not call;
    this is its epoch-level twin. The epoch's logs (with the bad loss) still
    reach the other callbacks and the history, so the caller can say which
    epoch diverged.
    """

    def on_epoch_end(self, epoch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(loss):
            self.model.stop_training = True


class StopWhenAsked(keras.callbacks.Callback):
    """Stops a fit running in another thread once `ask()` is called: Ctrl-C for a thread.

    Signals reach the main thread only. A fit in a worker thread
    (`recipes.core.workflow.Run.fit_each`) gets this callback, last; the main
    thread's signal handler calls `ask()`. With the fit's resume `checkpoint`
    the epoch under way is saved first (`Checkpoint.stop_soon`); then, at
    the next epoch's start, the fit raises `KeyboardInterrupt`.

    Args:
        checkpoint: the fit's `models.training.checkpoints.Checkpoint`, or `None`.
    """

    def __init__(self, checkpoint=None):
        super().__init__()
        self.checkpoint = checkpoint
        self.asked = False

    def ask(self):
        self.asked = True
        if self.checkpoint is not None:
            self.checkpoint.stop_soon()

    def on_epoch_begin(self, epoch, logs=None):
        if self.asked:  # the checkpoint, before this callback, has saved and raised if it could
            raise KeyboardInterrupt


class EpochScalars(keras.callbacks.Callback):
    """Writes scalars a function measures to TensorBoard after every epoch.

    Keras's `TensorBoard` callback logs what the epoch's logs hold (loss,
    metrics) and the weights; this logs anything else a lesson measures on the
    model as it trains, e.g. the per-layer gradient norms of the vanishing
    gradient, as `tf.summary.scalar(tag, value, step=epoch)` (Keras's step for
    epoch scalars too, so the curves line up).

    Args:
        log_dir: the folder of the event files (e.g. a run's `train/` folder).
        measure: a function of no arguments returning `{tag: number}`.
    """

    def __init__(self, log_dir, measure):
        super().__init__()
        self.log_dir = str(log_dir)
        self.measure = measure
        self._writer = None

    def on_train_begin(self, logs=None):
        import tensorflow as tf

        self._writer = tf.summary.create_file_writer(self.log_dir)

    def on_epoch_end(self, epoch, logs=None):
        import tensorflow as tf

        with self._writer.as_default():
            for tag, value in self.measure().items():
                tf.summary.scalar(tag, float(value), step=epoch)
        self._writer.flush()

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
