"""Five optimizers on one model: SGD, Momentum, AdaGrad, RMSProp and Adam.

Notes: "Optimizers" (W := W − α·∇, Momentum, AdaGrad, RMSProp, Adam and their
comparison table); NOTES-ERRATA #3, #4, #15.

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
rest in detail: Momentum's velocity must be added, not subtracted (#3);
Keras's AdaGrad starts its accumulator at 0.1 and puts ε inside the square
root (#4); RMSProp has no bias correction; Adam folds its bias correction into
the step size. `models.update_rules` writes all five in NumPy as Keras computes
them, and this recipe runs them against `keras.optimizers.*` on the same
random gradients at several learning rates: `reference_max_abs_diff` is the
largest weight difference seen, which the tests hold below 1e-6 (on a CPU it
is 0.0: the same float32 operations in the same order). The notes also
say Adam "requires less memory" (#15): `state_per_weight` counts what each
optimizer keeps per weight, and Adam keeps the most (2).

What to look at: `optimizer_curves.png` (log scale) and the table. At one
shared learning rate RMSProp and Adam reach the target loss first, Momentum
later; plain SGD and AdaGrad (whose steps shrink as its accumulator grows)
are still far above it after 40 epochs.
`details`: `sgd`, `momentum`, `adagrad`, `rmsprop`, `adam` (each
`final_loss`, `final_val_loss`, `test_metric`, `epochs_to_target`,
`state_per_weight`, `initial_weights_sha256`), `target_loss`, `exported`, and
`reference_max_abs_diff` (one number per optimizer).
"""

from recipes.registry import register

OPTIONS = ("epochs", "batch_size", "hidden", "learning_rate", "seed", "output_dir",
           "no_export", "report", "device")
"""No `--optimizer`: it runs all five. `--learning-rate` is the one step size all
five share. No early stopping or regularizers (same epochs for all) and no
`--data` (the lesson's data set)."""

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
def run(config):
    import time

    from models import update_rules
    from recipes import _optimization, _plots, _supervised
    from recipes.report import Table

    started = time.perf_counter()
    names = list(update_rules.RULES)
    runs = _optimization.run_each(config, {name: {"optimizer": name} for name in names},
                                  head="softmax", dataset="wine")
    learning_rates = sorted({*_optimization.REFERENCE_LEARNING_RATES, config.learning_rate})
    differences = {name: _optimization.reference_max_abs_diff(name, learning_rates)
                   for name in names}

    details, rows = {}, []
    for name, (each, initial) in runs.items():
        n_weights = sum(int(v.numpy().size) for v in each.model.trainable_variables)
        details[name] = {
            "final_loss": each.history["loss"][-1],
            "final_val_loss": each.history["val_loss"][-1],
            "test_metric": each.metrics["accuracy"],
            "epochs_to_target": _optimization.epochs_to_target(each.history["loss"], TARGET_LOSS),
            "state_per_weight": _optimization.state_per_weight(each.model.optimizer, n_weights),
            "initial_weights_sha256": initial,
        }
        rows.append([name, details[name]["final_loss"], details[name]["final_val_loss"],
                     details[name]["test_metric"], details[name]["epochs_to_target"] or "never",
                     details[name]["state_per_weight"], f"{differences[name]:.1e}"])
    best = min(names, key=lambda name: details[name]["final_val_loss"])

    epochs = len(runs[best][0].history["loss"])
    figure = _plots.curves(
        {name: each.history["loss"] for name, (each, _) in runs.items()},
        f"optimizers: training loss, learning rate {config.learning_rate:g} (wine); "
        f"target {TARGET_LOSS:g}", "epoch", "training loss (log scale)", logy=True)
    result = _supervised.finish(
        runs[best][0],
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
            "Reference update rules (models.update_rules) against keras.optimizers.*: "
            f"{_optimization.REFERENCE_STEPS} steps of random gradients at learning rates "
            f"{', '.join(f'{lr:g}' for lr in learning_rates)}; largest weight difference "
            f"{max(differences.values()):.1e}.",
        ],
    )
    result.timing["train_seconds"] = sum(each.train_seconds for each, _ in runs.values())
    result.timing["total_seconds"] = time.perf_counter() - started
    return result
