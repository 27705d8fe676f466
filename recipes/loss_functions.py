"""The notes' loss table: each loss by hand and by Keras, then MSE, MAE and Huber on outliers.

Notes: "Loss Functions - summarization table" (binary → binary cross-entropy,
multi-class → categorical cross-entropy, continuous → "Logloss"); ERRATA #8,
#10.

A loss scores a prediction against its target, and training lowers its mean
over the rows. The notes' table pairs each kind of target with a loss; its
last line, "continuous → Logloss", is a slip (ERRATA #8): log loss is
cross-entropy, a loss for class probabilities. A continuous target is trained
with the mean squared error, or, when some targets are gross errors, with a
loss that grows more slowly for large errors: the mean absolute error, or
Huber's loss (quadratic within δ of the target, linear beyond).

First, on small fixed examples (four rows each), every loss is computed by
hand in NumPy (`models.lessons.losses`: the formula written out) and by
Keras's loss object (`keras.losses.BinaryCrossentropy()`, …, `Huber()`): they
agree to 1e-6 (Keras computes in float32; the tests hold the difference below
1e-6). Then the same regression network (10 → 16 → 8 → 1, ReLU hidden units,
a linear output) is trained on the diabetes progression score three times,
with `loss="mean_squared_error"`, `"mean_absolute_error"` and `"huber"`, from
the same initial weights. So that the lesson has outliers to resist, 5% of
the training targets are gross errors (the score plus 10 standard
deviations, as a slipped digit would leave it); the validation and test
targets are the real ones. Early stopping on the (clean) validation loss
keeps each model's best epoch. Last, the notes' own advice is tried: the same
network with a sigmoid output trained with binary cross-entropy ("log loss")
on the real, clean target (centred, so of both signs, as the notes' table
says), beside the same network trained with MSE on that clean target.

What to look at: the by-hand table (differences near 1e-8), the regression
table (test MAE and RMSE in the score's units: MSE, which squares each error,
is dragged towards the outliers; MAE and Huber are not) and the cross-entropy
row: its training loss falls below zero and keeps falling (cross-entropy has
no minimum for a target outside [0, 1]: Keras computes it from the sigmoid's
logit, and the loss goes to −∞ as the logit grows), and no prediction can fall
below the training mean, though about half the patients do. `loss_curves.png`
draws each loss against the prediction for a fixed target; its third panel
shows why log loss fails on a continuous target: for a target of 2 the loss
falls without end as the logit grows (for 0.5, inside [0, 1], it has a
minimum). The Huber model is exported. `details`: `losses.{binary_crossentropy, categorical_crossentropy,
sparse_categorical_crossentropy, mean_squared_error, mean_absolute_error,
huber}` (each `by_hand`, `keras`, `abs_diff`), `max_abs_diff`,
`regression.{mse, mae, huber}` (each `test_mae`, `test_rmse`, `test_r2`,
`epochs_run`), `cross_entropy_on_continuous` (`test_mae`, `test_rmse`,
`test_r2`, `final_loss`, `share_of_targets_below_mean`,
`share_of_predictions_below_mean`, `mse_same_target`), `outliers` and `exported`.
"""

from recipes.core.registry import register

EXAMPLES = {
    "binary": ([1, 0, 1, 0], [0.9, 0.2, 0.6, 0.4]),
    "categorical": ([[1, 0, 0], [0, 1, 0], [0, 0, 1], [0, 1, 0]],
                    [[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.3, 0.5], [0.3, 0.4, 0.3]]),
    "regression": ([3.0, -0.5, 2.0, 7.0], [2.5, 0.0, 2.0, 9.0]),
}
"""The fixed example targets and predictions (binary: P(class 1); categorical: one-hot
targets and rows of probabilities; regression: values, one error beyond Huber's δ = 1)."""

REGRESSION_LOSSES = (("mse", "mean_squared_error"), ("mae", "mean_absolute_error"),
                     ("huber", "huber"))
"""(details key, Keras loss name) of the three regression runs, in table order."""

OUTLIER_SHARE = 0.05
OUTLIER_SHIFT = 10.0
"""5% of the training targets get +10 standard deviations (the validation and test
targets are left as they are)."""

OPTIONS = ("epochs", "batch_size", "hidden", "optimizer", "learning_rate", "patience", "seed",
           "output_dir", "no_export", "report", "device", "restart")
"""No `--data`: the lesson plants outliers in the diabetes target itself."""


@register(
    "loss-functions",
    scenario="The notes' loss table by hand = Keras; MSE / MAE / Huber on a real target",
    data="diabetes progression (scikit-learn), 5% of training targets made outliers",
    summary="Cross-entropies, MSE, MAE, Huber in NumPy against keras.losses; the same "
            "regression trained with MSE, MAE, Huber; log loss on a continuous target fails.",
    options=OPTIONS,
    defaults={"epochs": 100, "batch_size": 32, "hidden": (16, 8), "learning_rate": 0.01,
              "patience": 10},
)
def loss_functions(run):
    import keras
    import numpy as np

    from models.lessons import losses as by_hand
    from recipes.core import plots
    from recipes.core.report import Table

    config = run.config

    # 1. Each loss of the notes' table, by hand (NumPy) and by Keras's loss object.
    y_bin, p_bin = (np.array(v, dtype=np.float32) for v in EXAMPLES["binary"])
    y_cat, p_cat = (np.array(v, dtype=np.float32) for v in EXAMPLES["categorical"])
    labels = np.argmax(y_cat, axis=1)
    y_reg, p_reg = (np.array(v, dtype=np.float32) for v in EXAMPLES["regression"])
    pairs = {
        "binary_crossentropy": (by_hand.binary_crossentropy(y_bin, p_bin),
                                keras.losses.BinaryCrossentropy()(y_bin, p_bin)),
        "categorical_crossentropy": (by_hand.categorical_crossentropy(y_cat, p_cat),
                                     keras.losses.CategoricalCrossentropy()(y_cat, p_cat)),
        "sparse_categorical_crossentropy": (
            by_hand.sparse_categorical_crossentropy(labels, p_cat),
            keras.losses.SparseCategoricalCrossentropy()(labels, p_cat)),
        "mean_squared_error": (by_hand.mean_squared_error(y_reg, p_reg),
                               keras.losses.MeanSquaredError()(y_reg, p_reg)),
        "mean_absolute_error": (by_hand.mean_absolute_error(y_reg, p_reg),
                                keras.losses.MeanAbsoluteError()(y_reg, p_reg)),
        "huber": (by_hand.huber(y_reg, p_reg, delta=1.0),
                  keras.losses.Huber(delta=1.0)(y_reg, p_reg)),
    }
    loss_details = {name: {"by_hand": hand, "keras": float(value),
                           "abs_diff": abs(hand - float(value))}
                    for name, (hand, value) in pairs.items()}
    max_abs_diff = max(entry["abs_diff"] for entry in loss_details.values())

    # 2. Data: the diabetes score, centred and scaled (data.y_train has mean 0, std 1);
    # 5% of the training targets become gross errors (+10 standard deviations).
    data = run.load_data("diabetes", task="regression")
    rng = np.random.default_rng(config.seed)
    y_train = data.y_train.copy()
    outliers = rng.choice(len(y_train), max(1, round(OUTLIER_SHARE * len(y_train))),
                          replace=False)
    y_train[outliers] += OUTLIER_SHIFT

    def regression_network(output_activation=None):
        return keras.Sequential(
            [*(keras.layers.Dense(units, activation="relu") for units in config.hidden),
             keras.layers.Dense(1, activation=output_activation)],
            name="loss_functions")

    def early_stopping():
        """A fresh EarlyStopping on the validation loss (best epoch kept), with --patience."""
        return [keras.callbacks.EarlyStopping(monitor="val_loss", patience=config.patience,
                                              restore_best_weights=True)] if config.patience else []

    # The same network, from the same initial weights, trained with each regression loss.
    models, histories, regression = {}, {}, {}
    for key, loss in REGRESSION_LOSSES:
        with run.scope():
            model = data.with_preprocessing(regression_network())
            model.compile(optimizer=run.optimizer(), loss=loss, metrics=["mae"])
        histories[key] = run.fit(model, data.x_train, y_train, epochs=config.epochs,
                                 batch_size=config.batch_size,
                                 validation_data=(data.x_val, data.y_val),
                                 callbacks=early_stopping(), variant=key)
        models[key] = model
        scores = run.evaluate(model, data)  # the real test targets, in the score's units
        regression[key] = {"test_mae": scores["mae"], "test_rmse": scores["rmse"],
                           "test_r2": scores["r2"],
                           "epochs_run": len(histories[key].history["loss"])}

    # 3. The notes' "Logloss" on the clean continuous target: a sigmoid output and binary
    # cross-entropy, against MSE on the same clean target (early stopping alike; the
    # cross-entropy's validation loss falls without end, so it never stops early).
    clean = {}
    for key, loss, output in (("mse", "mean_squared_error", None),
                              ("cross_entropy", "binary_crossentropy", "sigmoid")):
        with run.scope():
            model = data.with_preprocessing(regression_network(output))
            model.compile(optimizer=run.optimizer(), loss=loss)
        logloss = run.fit(model, data.x_train, data.y_train, epochs=config.epochs,
                          batch_size=config.batch_size, validation_data=(data.x_val, data.y_val),
                          callbacks=early_stopping(), variant=f"clean_{key}").history
        clean[key] = run.evaluate(model, data) | {"epochs_run": len(logloss["loss"])}
    scores = clean["cross_entropy"]
    predictions = data.for_export(model)(data.x_test).numpy().reshape(-1)
    mean = float(np.mean(data.split.y_train))
    cross_entropy = {
        "test_mae": scores["mae"], "test_rmse": scores["rmse"], "test_r2": scores["r2"],
        "final_loss": logloss["loss"][-1], "lowest_loss": min(logloss["loss"]),
        "share_of_targets_below_mean": float(np.mean(data.split.y_test < mean)),
        "share_of_predictions_below_mean": float(np.mean(predictions < mean)),
        "mse_same_target": {"test_mae": clean["mse"]["mae"], "test_rmse": clean["mse"]["rmse"],
                            "test_r2": clean["mse"]["r2"]},
    }

    # The figure: each loss (Keras's objects, per row) against the prediction.
    y_hat = np.linspace(-3, 3, 601)
    p = np.linspace(0.005, 0.995, 199)
    per_row = {"reduction": None}
    regression_curves = {
        "MSE": keras.losses.MeanSquaredError(**per_row)(np.zeros((601, 1)), y_hat[:, None]),
        "MAE": keras.losses.MeanAbsoluteError(**per_row)(np.zeros((601, 1)), y_hat[:, None]),
        "Huber (δ = 1)": keras.losses.Huber(**per_row)(np.zeros((601, 1)), y_hat[:, None]),
    }
    entropy_curves = {
        f"target {t}": keras.losses.BinaryCrossentropy(**per_row)(np.full((199, 1), t), p[:, None])
        for t in (1, 0)
    }
    logits = np.linspace(-6, 6, 601)
    continuous = {f"target {t}": keras.losses.BinaryCrossentropy(from_logits=True, **per_row)(
        np.full((601, 1), t), logits[:, None]) for t in (0.5, 2.0)}
    figure = plots.function_panels(
        {"regression losses, target y = 0": {
            "x": y_hat, "xlabel": "prediction ŷ",
            "curves": {k: np.asarray(v) for k, v in regression_curves.items()}},
         "binary cross-entropy, target 1 or 0": {
            "x": p, "xlabel": "predicted probability p",
            "curves": {k: np.asarray(v) for k, v in entropy_curves.items()}},
         "cross-entropy of a continuous target": {
            "x": logits, "xlabel": "the sigmoid's logit z (p = σ(z))",
            "curves": {k: np.asarray(v) for k, v in continuous.items()}}},
        "loss-functions: each loss against the prediction (Keras's loss objects)")

    keras_names = {"binary_crossentropy": "BinaryCrossentropy()",
                   "categorical_crossentropy": "CategoricalCrossentropy()",
                   "sparse_categorical_crossentropy": "SparseCategoricalCrossentropy()",
                   "mean_squared_error": "MeanSquaredError()",
                   "mean_absolute_error": "MeanAbsoluteError()", "huber": "Huber(delta=1.0)"}
    by_hand_table = Table(
        "Each loss on the fixed examples: by hand (NumPy, float64) and keras.losses (float32)",
        ["loss", "keras.losses", "by hand", "Keras", "|difference|"],
        [[name, keras_names[name], e["by_hand"], e["keras"], f"{e['abs_diff']:.1e}"]
         for name, e in loss_details.items()])
    regression_table = Table(
        f"Same network, same initial weights, {len(outliers)} of {len(y_train)} training "
        f"targets +{OUTLIER_SHIFT:g} std (test targets real; score units)",
        ["loss", "test MAE", "test RMSE", "test R²", "epochs run"],
        [*[[loss, regression[key]["test_mae"], regression[key]["test_rmse"],
            regression[key]["test_r2"], regression[key]["epochs_run"]]
           for key, loss in REGRESSION_LOSSES],
         ["mean_squared_error (real targets only)", clean["mse"]["mae"], clean["mse"]["rmse"],
          clean["mse"]["r2"], clean["mse"]["epochs_run"]],
         ["binary_crossentropy (sigmoid, real targets only)", cross_entropy["test_mae"],
          cross_entropy["test_rmse"], cross_entropy["test_r2"], len(logloss["loss"])]])
    return run.finish(
        models["huber"], data, histories["huber"],
        details={
            "losses": loss_details,
            "max_abs_diff": max_abs_diff,
            "regression": regression,
            "cross_entropy_on_continuous": cross_entropy,
            "outliers": {"rows": len(outliers), "of": len(y_train), "shift_in_std": OUTLIER_SHIFT},
            "exported": "huber",
        },
        tables=[by_hand_table, regression_table],
        figures={"loss_curves.png": figure},
        messages=[
            f"By hand = Keras on every loss: largest difference {max_abs_diff:.1e}.",
            f"Log loss on a continuous target: training loss {cross_entropy['final_loss']:.4g} "
            f"after {len(logloss['loss'])} epochs (below zero: no minimum to reach); "
            f"{cross_entropy['share_of_targets_below_mean']:.0%} of test patients lie below the "
            f"mean, {cross_entropy['share_of_predictions_below_mean']:.0%} of its predictions do.",
            "Exported: the Huber model (robust to the planted outliers).",
        ],
    )
