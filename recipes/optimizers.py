"""Five optimizers on one model: SGD, Momentum, AdaGrad, RMSProp and Adam.

Notes: "Optimizers" (W := W − α·∇, Momentum, AdaGrad, RMSProp, Adam and their
comparison table); ERRATA #3, #4, #15.

The notes present four refinements of plain gradient descent: Momentum keeps
a running velocity of past steps, AdaGrad divides each weight's step by the
root of its summed squared gradients, RMSProp by a decaying average of them,
and Adam combines a momentum-like first moment with RMSProp's second moment.
This recipe trains the same MLP (13 → 16 → 8 → 3 softmax) on the UCI wine
data with each of Keras's built-ins — `SGD`, `SGD(momentum=0.9)`, `Adagrad`,
`RMSprop`, `Adam` — from the same initial weights, for the same epochs, at
the same learning rate (`--learning-rate`, 0.01), and reports each one's final
training loss, test accuracy and the first epoch whose training loss is at or
below 0.1. The model with the lowest final validation loss is exported.

Two of the notes' formulas are wrong as written, and Keras's differ from the
rest in detail: Momentum's velocity must be added, not subtracted
(ERRATA #3); Keras's AdaGrad starts its accumulator at 0.1 and puts ε inside
the square root (ERRATA #4); RMSProp has no bias correction; Adam folds its
bias correction into the step size. `models.lessons.update_rules` writes all
five in NumPy as Keras computes them, and this recipe runs them against
`keras.optimizers.*` on the same random gradients at several learning rates:
`reference_max_abs_diff` is the largest weight difference seen, which the
tests hold below 1e-6 (on a CPU it is 0.0: the same float32 operations in the
same order). The notes also say Adam "requires less memory" (ERRATA #15):
`state_per_weight` counts what each optimizer keeps per weight, and Adam
keeps the most (2).

The loop over the five is in the recipe: per optimizer a fresh
`keras.Sequential`, compiled with it, trained by `run.fit(..., variant=NAME)`;
each variant keeps its own checkpoint, so a killed run resumes where it stopped.

What to look at: `optimizer_curves.png` (log scale) and the table. At one
shared learning rate RMSProp and Adam reach the target loss first, Momentum
later; plain SGD and AdaGrad (whose steps shrink as its accumulator grows)
are still far above it after 40 epochs.
`details`: `sgd`, `momentum`, `adagrad`, `rmsprop`, `adam` (each
`final_loss`, `final_val_loss`, `test_metric`, `epochs_to_target`,
`state_per_weight`, `initial_weights_sha256`), `target_loss`, `exported`, and
`reference_max_abs_diff` (one number per optimizer).
"""

from recipes.core.registry import register

OPTIONS = ("epochs", "batch_size", "hidden", "learning_rate", "seed", "data", "target", "drop",
           "categorical", "output_dir", "no_export", "report", "device", "restart")
"""No `--optimizer`: it runs all five. `--learning-rate` is the one step size all
five share. No early stopping or regularizers (same epochs for all). `--data`
takes a CSV whose target has three or more classes."""

NAMES = ("sgd", "momentum", "adagrad", "rmsprop", "adam")
"""The five optimizers, in the notes' order (`run.optimizer(name)` makes each)."""

TARGET_LOSS = 0.1
"""The training loss (cross-entropy) whose first epoch at or below it is reported."""


@register(
    "optimizers",
    scenario="SGD, Momentum, AdaGrad, RMSProp and Adam compared",
    data="wine (scikit-learn)",
    summary="The five optimizers from the same initial weights, and NumPy reference "
            "update rules checked against Keras.",
    options=OPTIONS,
    defaults={"epochs": 40, "batch_size": 32, "hidden": (16, 8), "learning_rate": 0.01},
)
def optimizers(run):
    import keras

    from models.data import fingerprint
    from models.lessons import optimization
    from recipes.core import plots
    from recipes.core.report import Table

    config = run.config

    # Data: the wine table, 3 cultivars (or your --data CSV with 3+ classes).
    data = run.load_data("wine", task="multiclass")

    # One model per optimizer, each from the same initial weights (a fresh, reseeded scope).
    # run.optimizer(name) is Keras's built-in at --learning-rate: SGD, SGD(momentum=0.9),
    # Adagrad, RMSprop, Adam.
    models, histories, details, rows = {}, {}, {}, []
    for name in NAMES:
        with run.scope():
            network = keras.Sequential(
                [keras.layers.Dense(units, activation="relu") for units in config.hidden]
                + [keras.layers.Dense(data.n_classes, activation="softmax")],
                name="optimizers")
            model = data.with_preprocessing(network)
            model.compile(optimizer=run.optimizer(name), loss="sparse_categorical_crossentropy",
                          metrics=["accuracy"])
        initial = fingerprint(*model.get_weights())
        history = run.fit(model, data.x_train, data.y_train, epochs=config.epochs,
                          batch_size=config.batch_size, validation_data=(data.x_val, data.y_val),
                          variant=name)
        models[name], histories[name] = model, history

        logs = history.history
        n_weights = sum(int(v.numpy().size) for v in model.trainable_variables)
        details[name] = {
            "final_loss": logs["loss"][-1],
            "final_val_loss": logs["val_loss"][-1],
            "test_metric": run.evaluate(model, data)["accuracy"],
            "epochs_to_target": optimization.epochs_to_target(logs["loss"], TARGET_LOSS),
            "state_per_weight": optimization.state_per_weight(model.optimizer, n_weights),
            "initial_weights_sha256": initial,
        }

    # The NumPy reference rules (models.lessons.update_rules) against keras.optimizers.*
    # on the same random gradients, at several learning rates and this run's.
    learning_rates = sorted({*optimization.REFERENCE_LEARNING_RATES, config.learning_rate})
    differences = {name: optimization.reference_max_abs_diff(name, learning_rates)
                   for name in NAMES}
    for name in NAMES:
        entry = details[name]
        rows.append([name, entry["final_loss"], entry["final_val_loss"], entry["test_metric"],
                     entry["epochs_to_target"] or "never", entry["state_per_weight"],
                     f"{differences[name]:.1e}"])

    # The model with the lowest final validation loss is the one exported.
    best = min(NAMES, key=lambda name: details[name]["final_val_loss"])
    epochs = len(histories[best].history["loss"])
    figure = plots.curves(
        {name: history.history["loss"] for name, history in histories.items()},
        f"optimizers: training loss, learning rate {config.learning_rate:g} "
        f"({data.dataset.name}); target {TARGET_LOSS:g}", "epoch", "training loss (log scale)",
        logy=True)
    return run.finish(
        models[best], data, histories[best],
        details={**details, "target_loss": TARGET_LOSS, "exported": best,
                 "reference_learning_rates": learning_rates,
                 "reference_max_abs_diff": differences},
        tables=[Table(
            f"Five optimizers, same initial weights, {epochs} epochs, learning rate "
            f"{config.learning_rate:g}",
            ["optimizer", "final loss", "final val loss", "test accuracy",
             f"epochs to loss <= {TARGET_LOSS:g}", "state/weight", "|reference - Keras|"],
            rows)],
        figures={"optimizer_curves.png": figure},
        messages=[
            "Same MLP, same initial weights, same epochs and learning rate: only the "
            f"optimizer differs. Exported: the {best} model (lowest final validation loss).",
            "Reference update rules (models.lessons.update_rules) against keras.optimizers.*: "
            f"{optimization.REFERENCE_STEPS} steps of random gradients at learning rates "
            f"{', '.join(f'{lr:g}' for lr in learning_rates)}; largest weight difference "
            f"{max(differences.values()):.1e}.",
        ],
    )
