"""Early stopping, both of the notes' rules: patience on the validation loss, and a target.

Notes: "Early Stopping"; ERRATA #16.

The notes give two rules under one name (ERRATA #16). The first sets a
criterion in advance, "Accuracy = 0.9", and stops training once it is met:
`models.training.callbacks.StopAtTarget(monitor="val_accuracy", target=...)`. The
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

from recipes.core.options import TRAINING
from recipes.core.registry import register

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
def early_stopping(run):
    import tempfile
    from pathlib import Path

    import keras
    import numpy as np

    from models.lessons import regularization as lesson
    from models.training import loop
    from models.training.callbacks import StopAtTarget
    from recipes.core import plots
    from recipes.core.report import Table

    config = run.config

    # Data: the breast-cancer table (or your --data CSV), split 60 / 20 / 20 with the seed.
    data = run.load_data("breast_cancer", task="binary")

    with tempfile.TemporaryDirectory() as folder:
        # The same model (same seed) three times, each with its stopping rule:
        # EarlyStopping on the validation loss (its weights saved every epoch, to check
        # which ones it kept), the target rule, and none (all --epochs).
        stop = StopAtTarget(monitor=MONITOR, target=TARGET)
        rules = {
            "early_stopping": [
                keras.callbacks.EarlyStopping(monitor="val_loss", patience=config.patience,
                                              restore_best_weights=True),
                keras.callbacks.ModelCheckpoint(
                    str(Path(folder) / "epoch_{epoch:03d}.weights.h5"), save_weights_only=True),
            ],
            "target": [stop],
            "no_early_stopping": [],
        }
        models, histories = {}, {}
        for variant, callbacks in rules.items():
            with run.scope():
                network = keras.Sequential(name=f"early_stopping_{variant}")
                for i, units in enumerate(config.hidden, start=1):
                    network.add(keras.layers.Dense(
                        units, activation="relu", name=f"hidden_{i}",
                        kernel_regularizer=keras.regularizers.L2(config.l2) if config.l2 else None))
                    if config.dropout:
                        network.add(keras.layers.Dropout(config.dropout, name=f"dropout_{i}"))
                network.add(keras.layers.Dense(1, activation="sigmoid", name="output"))
                model = data.with_preprocessing(network)
                model.compile(optimizer=run.optimizer(), loss="binary_crossentropy",
                              metrics=["accuracy"])
            histories[variant] = run.fit(model, data.x_train, data.y_train, epochs=config.epochs,
                                         batch_size=config.batch_size,
                                         validation_data=(data.x_val, data.y_val),
                                         callbacks=callbacks, variant=variant)
            models[variant] = model

        # Which weights did EarlyStopping keep? Compare them with the epoch checkpoints.
        model = models["early_stopping"]
        history = histories["early_stopping"].history
        epochs_run = len(history["val_loss"])
        best = int(np.argmin(history["val_loss"]))  # Keras keeps the first lowest val_loss
        twin = keras.models.clone_model(model)
        twin.load_weights(Path(folder) / f"epoch_{best + 1:03d}.weights.h5")
        to_best = _max_difference(model, twin)
        twin.load_weights(Path(folder) / f"epoch_{epochs_run:03d}.weights.h5")
        to_last = _max_difference(model, twin)

    split = data.encoded_split
    restored_val_loss = float(keras.losses.binary_crossentropy(
        np.asarray(split.y_val, np.float32).reshape(-1, 1),
        loop.predict(model, split.x_val)).numpy().mean())
    test_accuracy = {variant: run.evaluate(m, data)["accuracy"] for variant, m in models.items()}
    targeted = histories["target"].history
    full = histories["no_early_stopping"].history
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
                   "value": stop.reached, "epochs_run": len(targeted["loss"]),
                   "test_accuracy": test_accuracy["target"]},
        "no_early_stopping": {"epochs_run": len(full["loss"]),
                              "val_loss": full["val_loss"][-1],
                              "val_accuracy": full["val_accuracy"][-1],
                              "test_accuracy": test_accuracy["no_early_stopping"]},
    }
    target_rule = f"{MONITOR} >= {TARGET:g} (StopAtTarget)"
    kept_target = len(targeted["loss"])
    tables = [
        Table(
            "Three ways to stop: same model, same seed (epochs are 1-based)",
            ["rule", "epochs run", "weights of epoch", "val loss", "val accuracy",
             "test accuracy"],
            [
                [f"val_loss, patience {config.patience}, restore best", epochs_run, best + 1,
                 restored_val_loss, lesson.accuracy(model, "binary", split.x_val, split.y_val),
                 test_accuracy["early_stopping"]],
                [target_rule + ("" if stopped else ": not reached"), kept_target, kept_target,
                 targeted["val_loss"][-1], targeted["val_accuracy"][-1],
                 test_accuracy["target"]],
                [f"none: all {config.epochs} epochs", len(full["loss"]), len(full["loss"]),
                 full["val_loss"][-1], full["val_accuracy"][-1],
                 test_accuracy["no_early_stopping"]],
            ],
        ),
        Table(
            "The weights EarlyStopping kept, against the epoch checkpoints (max |Δw|)",
            ["checkpoint", "val loss then", "max |Δw| to the kept weights"],
            [[f"epoch {best + 1} (best)", history["val_loss"][best], to_best],
             [f"epoch {epochs_run} (last)", history["val_loss"][-1], to_last]],
        ),
    ]
    figures = {"early_stopping.png": plots.early_stopping(
        full, best_epoch=best + 1, stop_epoch=epochs_run, monitor=MONITOR,
        target=TARGET, target_epoch=stopped,
        title=f"early-stopping: {config.epochs} epochs without stopping, and where each rule acts",
    )}

    # Evaluate the early-stopped model on the test split, against the baselines, and export it.
    return run.finish(model, data, histories["early_stopping"], details=details, tables=tables,
                      figures=figures, messages=[
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
