"""Early stopping, both of the notes' rules: patience on the validation loss, and a target.

Notes: "Early Stopping"; NOTES-ERRATA #16.

The notes give two rules under one name (NOTES-ERRATA #16). The first sets a
criterion in advance, "Accuracy = 0.9", and stops training once it is met:
`models.callbacks.StopAtTarget(monitor="val_accuracy", target=...)`. The
second checks the validation log-loss, stops when it has got worse, and
"uses the previous model": Keras's
`EarlyStopping(monitor="val_loss", patience=N, restore_best_weights=True)`
stops after N epochs without a lower validation loss and puts back the
weights of the best epoch, not those of the last one. Without
`restore_best_weights` it would keep the last, worse, weights.

This recipe trains a wide MLP on the breast-cancer data with a learning rate
that lets it overfit fast: its validation loss bottoms out after a few epochs
and then climbs while the training loss falls to zero. It trains with
`EarlyStopping` (`--patience`, the exported model), saving a Keras checkpoint
(`ModelCheckpoint`) every epoch, and then shows that the final weights are
those of the best epoch's checkpoint, to the last bit, and not the last
epoch's. It trains the same model (same seed) with the target rule, and with
no early stopping for all `--epochs`, and compares the three.

What to look at: the table of stopping rules (epochs run, epoch kept,
validation loss and accuracy, test accuracy), the checkpoint table (0
difference to the best epoch), and `early_stopping.png` (the validation loss
turning up, the epoch kept and the stop; the accuracy reaching the target).
On such a small validation split (114 rows) accuracy moves in steps of 0.9%
and the notes' 0.9 is reached after one epoch, so the target here is 0.98.
`details`: `patience`, `epochs_run`, `best_epoch` (1-based), `checkpoint`
(`best_epoch_max_difference`, `last_epoch_max_difference`,
`matches_best_epoch`), `val_loss` (`best`, `last`, `restored_model`),
`target` (`monitor`, `target`, `stopped_epoch` 1-based or null, `value`,
`epochs_run`, `test_accuracy`), `no_early_stopping` (`epochs_run`,
`val_loss`, `val_accuracy`, `test_accuracy`).
"""

from recipes.options import TRAINING
from recipes.registry import register

MONITOR = "val_accuracy"
TARGET = 0.98
"""The target rule's metric and value (the notes' example is accuracy 0.9)."""


@register(
    "early-stopping",
    scenario="Early stopping: patience on the validation loss (best weights kept), and a target",
    data="breast cancer (scikit-learn)",
    summary="EarlyStopping restores the best epoch (checked against checkpoints); stop-at-target.",
    options=TRAINING,
    defaults={"epochs": 100, "batch_size": 32, "hidden": (64, 32), "learning_rate": 0.01,
              "patience": 10},
)
def run(config):
    import tempfile
    from dataclasses import replace
    from pathlib import Path

    import keras
    import numpy as np

    from models import training
    from models.callbacks import StopAtTarget
    from recipes import _plots, _regularization, _supervised
    from recipes.report import Table

    head, dataset = "sigmoid", "breast_cancer"
    with tempfile.TemporaryDirectory() as folder:
        checkpoint = keras.callbacks.ModelCheckpoint(
            str(Path(folder) / "epoch_{epoch:03d}.weights.h5"), save_weights_only=True)
        trained = _supervised.train(config, head=head, dataset=dataset, callbacks=[checkpoint])
        history = trained.history
        epochs_run = len(history["val_loss"])
        best = int(np.argmin(history["val_loss"]))  # Keras keeps the first lowest val_loss
        twin = keras.models.clone_model(trained.model)
        twin.load_weights(Path(folder) / f"epoch_{best + 1:03d}.weights.h5")
        to_best = _max_difference(trained.model, twin)
        twin.load_weights(Path(folder) / f"epoch_{epochs_run:03d}.weights.h5")
        to_last = _max_difference(trained.model, twin)

    split, model = trained.split, trained.model
    restored_val_loss = float(keras.losses.binary_crossentropy(
        np.asarray(split.y_val, np.float32).reshape(-1, 1),
        training.predict(model, split.x_val)).numpy().mean())

    stop = StopAtTarget(monitor=MONITOR, target=TARGET)
    targeted = _supervised.train(replace(config, patience=None), head=head, dataset=dataset,
                                 callbacks=[stop], verbose=0)
    full = _supervised.train(replace(config, patience=None), head=head, dataset=dataset,
                             verbose=0)
    stopped = None if stop.stopped_epoch is None else stop.stopped_epoch + 1

    details = {
        "patience": config.patience,
        "epochs_run": epochs_run,
        "best_epoch": best + 1,
        "checkpoint": {"best_epoch_max_difference": to_best,
                       "last_epoch_max_difference": to_last,
                       "matches_best_epoch": to_best == 0.0},
        "val_loss": {"best": history["val_loss"][best], "last": history["val_loss"][-1],
                     "restored_model": restored_val_loss},
        "target": {"monitor": MONITOR, "target": TARGET, "stopped_epoch": stopped,
                   "value": stop.reached, "epochs_run": len(targeted.history["loss"]),
                   "test_accuracy": targeted.metrics["accuracy"]},
        "no_early_stopping": {"epochs_run": len(full.history["loss"]),
                              "val_loss": full.history["val_loss"][-1],
                              "val_accuracy": full.history["val_accuracy"][-1],
                              "test_accuracy": full.metrics["accuracy"]},
    }
    target_rule = f"{MONITOR} >= {TARGET:g} (StopAtTarget)"
    kept_target = len(targeted.history["loss"])
    tables = [
        Table(
            "Three ways to stop: same model, same seed (epochs are 1-based)",
            ["rule", "epochs run", "weights of epoch", "val loss", "val accuracy",
             "test accuracy"],
            [
                [f"val_loss, patience {config.patience}, restore best", epochs_run, best + 1,
                 restored_val_loss, _regularization.accuracy(model, "binary", split.x_val,
                                                             split.y_val),
                 trained.metrics["accuracy"]],
                [target_rule + ("" if stopped else ": not reached"), kept_target, kept_target,
                 targeted.history["val_loss"][-1], targeted.history["val_accuracy"][-1],
                 targeted.metrics["accuracy"]],
                [f"none: all {config.epochs} epochs", len(full.history["loss"]),
                 len(full.history["loss"]), full.history["val_loss"][-1],
                 full.history["val_accuracy"][-1], full.metrics["accuracy"]],
            ],
        ),
        Table(
            "The weights EarlyStopping kept, against the epoch checkpoints (max |Δw|)",
            ["checkpoint", "val loss then", "max |Δw| to the kept weights"],
            [[f"epoch {best + 1} (best)", history["val_loss"][best], to_best],
             [f"epoch {epochs_run} (last)", history["val_loss"][-1], to_last]],
        ),
    ]
    figures = {"early_stopping.png": _plots.early_stopping(
        full.history, best_epoch=best + 1, stop_epoch=epochs_run, monitor=MONITOR,
        target=TARGET, target_epoch=stopped,
        title=f"early-stopping: {config.epochs} epochs without stopping, and where each rule acts",
    )}
    return _supervised.finish(trained, details=details, tables=tables, figures=figures, messages=[
        f"EarlyStopping: stopped after epoch {epochs_run}, kept epoch {best + 1} (val_loss "
        f"{history['val_loss'][best]:.4f}; last {history['val_loss'][-1]:.4f}); the kept weights "
        f"{'equal' if to_best == 0.0 else 'DIFFER from'} that epoch's checkpoint",
        f"StopAtTarget: {MONITOR} >= {TARGET:g} "
        + (f"first reached at epoch {stopped} ({stop.reached:.4f})" if stopped
           else f"never reached in {config.epochs} epochs"),
    ])


def _max_difference(model, other):
    """The largest absolute difference between two models' weights, over all of them."""
    import numpy as np

    return float(max(np.max(np.abs(a - b)) if a.size else 0.0
                     for a, b in zip(model.get_weights(), other.get_weights())))
