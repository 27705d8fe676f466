"""L2 penalty: what Keras adds to the loss, and how it shrinks the weights.

Notes: "Regularization Penalty in Cost Function"; ERRATA #10.

The notes write the regularized cost as J = 1/(2n)·Σ(ŷ − y)² + λ·ΣW²: the
data's error plus a penalty on large weights, as in ridge regression. In
Keras the penalty is a layer argument, `Dense(...,
kernel_regularizer=keras.regularizers.L2(λ))`, and what it adds to the loss
is exactly λ·Σw² over that layer's kernel (its biases are not penalized).
Keras's mean squared error is 1/n·Σ(ŷ − y)², though, not 1/(2n) (ERRATA
#10): the 1/2 is a textbook convenience that tidies the derivative, and
Keras does not use it.

This recipe predicts the diabetes data's disease progression (a positive
score, so a ReLU output and MSE) with `--l2 λ` on every hidden kernel, and
checks the loss against a hand computation from the final weights: the
penalty, λ·Σw² over the hidden kernels, equals the sum of `model.losses`, and
Keras's training loss equals (1/n)·Σ(ŷ − y)² / s² + λ·Σw², with ŷ and y in
the score's own units. The 1/s²: the network learns the score divided by s,
its root mean square over the training rows (`run.load_data` scales it so;
the exported model multiplies by s again), and Keras's MSE is taken in those
units. With the notes' 1/(2n) the sum would not match. Then it trains the
same model from the same starting weights (same seed) with no penalty and
compares the two.

What to look at: the loss table (Keras = by hand to float precision), Σw²
per layer with and without the penalty (the penalized hidden kernels end far
smaller; the unpenalized output layer need not), `l2_weights.png` (Σw² by
epoch, and the weights' histogram pulled towards 0), and the train / test R²
of both models. `details`: `l2`, `penalty` (`keras`, `by_hand`,
`difference`), `loss` (`keras_total`, `by_hand_total`, `data_term`,
`data_term_notes_half`, `target_scale` s), `squared_weights` (`with_l2`,
`without_l2`, per layer), `with_l2` and `without_l2` (train / validation /
test R² and MAE).
"""

from recipes.core.options import TRAINING
from recipes.core.registry import register


@register(
    "l2-penalty",
    scenario="L2 penalty in the cost: Keras adds λ·Σw², and the weights shrink",
    data="diabetes progression (scikit-learn)",
    summary="ReLU regression with an L2 kernel penalty, checked by hand, against no penalty.",
    options=TRAINING,
    defaults={"epochs": 100, "batch_size": 32, "hidden": (64, 32), "learning_rate": 0.01,
              "l2": 0.01},
)
def l2_penalty(run):
    import keras
    import numpy as np

    from models.lessons import regularization as lesson
    from models.training import loop
    from recipes.core import plots
    from recipes.core.errors import UsageError
    from recipes.core.report import Table

    config = run.config
    if not config.l2 > 0:
        raise UsageError(
            f"`--l2` must be > 0 for `{config.recipe}`, which compares the model with this "
            f"regularizer against the same model without it. Received: --l2={config.l2:g}. "
            f"See `python -m recipes.run {config.recipe} --help`."
        )

    # Data: the diabetes progression score (or your --data CSV), a positive target.
    # The network learns it divided by its training root mean square s (data.y_train).
    data = run.load_data("diabetes", task="positive")
    scale = data.target_scale[1]

    # Two models from the same seed, so the same starting weights: λ·Σw² on every
    # hidden kernel, and no penalty. Same layers, same optimizer, same epochs.
    models, histories, norms = {}, {}, {}
    for variant, lam in (("l2", config.l2), ("no_penalty", 0.0)):
        with run.scope():
            network = keras.Sequential(name=f"l2_penalty_{variant}")
            for i, units in enumerate(config.hidden, start=1):
                network.add(keras.layers.Dense(
                    units, activation="relu", name=f"hidden_{i}",
                    kernel_regularizer=keras.regularizers.L2(lam) if lam else None))
                if config.dropout:
                    network.add(keras.layers.Dropout(config.dropout, name=f"dropout_{i}"))
            network.add(keras.layers.Dense(1, activation="relu", name="output"))
            model = data.with_preprocessing(network)
            model.compile(optimizer=run.optimizer(), loss="mean_squared_error", metrics=["mae"])
        callbacks = [norms.setdefault(variant, lesson.SquaredWeightsLog())]
        if config.patience:
            callbacks.append(keras.callbacks.EarlyStopping(
                monitor="val_loss", patience=config.patience, restore_best_weights=True))
        histories[variant] = run.fit(model, data.x_train, data.y_train, epochs=config.epochs,
                                     batch_size=config.batch_size,
                                     validation_data=(data.x_val, data.y_val),
                                     callbacks=callbacks, variant=variant)
        models[variant] = model
    model, plain = models["l2"], models["no_penalty"]

    # The loss Keras minimizes, on the whole training split with the final weights.
    x, y = data.x_train, data.y_train
    keras_total = float(model.compute_loss(x=x, y=y, y_pred=model(x, training=False),
                                           training=False))
    keras_penalty = lesson.keras_penalty(model)
    by_hand_penalty = lesson.l2_by_hand(model)
    # By hand, in the score's own units: the exported model's predictions minus the scores.
    predicted = loop.predict(data.for_export(model), data.export_feed(data.split.x_train))
    predicted = np.asarray(predicted, dtype=np.float64)
    errors = predicted.reshape(-1) - np.asarray(data.split.y_train, dtype=np.float64)
    data_term = float(np.mean(errors ** 2)) / scale ** 2                # Keras: 1/n
    notes_half = float(np.sum(errors ** 2)) / (2 * len(errors)) / scale ** 2  # the notes: 1/(2n)

    with_l2 = _r2_by_split(data.for_export(model), data)
    without_l2 = _r2_by_split(data.for_export(plain), data)
    squared = lesson.squared_weights(model)
    squared_plain = lesson.squared_weights(plain)

    details = {
        "l2": config.l2,
        "penalty": {"keras": keras_penalty, "by_hand": by_hand_penalty,
                    "difference": abs(keras_penalty - by_hand_penalty)},
        "loss": {"keras_total": keras_total, "by_hand_total": data_term + by_hand_penalty,
                 "data_term": data_term, "data_term_notes_half": notes_half,
                 "target_scale": scale},
        "squared_weights": {"with_l2": squared, "without_l2": squared_plain},
        "with_l2": with_l2,
        "without_l2": without_l2,
    }
    lam = f"{config.l2:g}"
    tables = [
        Table(
            f"The training loss, by hand and from Keras (training rows, final weights, λ = {lam})",
            ["term", "by hand", "Keras"],
            [
                ["penalty λ·Σw² (hidden kernels)", by_hand_penalty, keras_penalty],
                ["data term (1/n)·Σ(ŷ−y)² / s²", data_term, keras_total - keras_penalty],
                ["total J", data_term + by_hand_penalty, keras_total],
                ["the notes' (1/2n)·Σ(ŷ−y)² / s² (not Keras's)", notes_half, "-"],
            ],
        ),
        Table(
            "Σw² per layer: same seed, same starting weights, with and without the penalty",
            ["layer", "penalized", f"Σw² with λ = {lam}", "Σw² with no penalty", "ratio"],
            [[name, name.startswith("hidden_"), squared[name], squared_plain[name],
              squared[name] / squared_plain[name] if squared_plain[name] else float("nan")]
             for name in squared],
        ),
        Table(
            "R² and MAE by split (1.0 is perfect; the gap is train − validation R²)",
            ["model", "train R²", "validation R²", "test R²", "test MAE", "gap"],
            [[f"L2 λ = {lam}", with_l2["train_r2"], with_l2["val_r2"], with_l2["test_r2"],
              with_l2["test_mae"], with_l2["gap"]],
             ["no penalty", without_l2["train_r2"], without_l2["val_r2"], without_l2["test_r2"],
              without_l2["test_mae"], without_l2["gap"]]],
        ),
    ]
    kernels = {
        f"L2 λ = {lam}": np.concatenate([np.ravel(layer.kernel)
                                         for layer in lesson.hidden_layers(model)]),
        "no penalty": np.concatenate([np.ravel(layer.kernel)
                                      for layer in lesson.hidden_layers(plain)]),
    }
    figures = {"l2_weights.png": plots.weight_shrinkage(
        {f"L2 λ = {lam}": norms["l2"].values, "no penalty": norms["no_penalty"].values},
        kernels, f"l2-penalty: hidden kernels with and without λ·Σw² (λ = {lam})")}

    # Evaluate the penalized model on the test split, against the baselines, and export it.
    return run.finish(model, data, histories["l2"], details=details, tables=tables,
                      figures=figures, messages=[
        f"Penalty: Keras adds {keras_penalty:.6g} = λ·Σw² by hand {by_hand_penalty:.6g} "
        f"(difference {abs(keras_penalty - by_hand_penalty):.2g}); MSE is 1/n·Σ, not 1/(2n)",
    ])


def _r2_by_split(model, data):
    """R² and MAE of `model` (raw values in, raw units out) on each split, and the gap = train −
    validation R²."""
    from models.training import evaluation, loop

    split = data.split
    out = {}
    for part, x, y in (("train", split.x_train, split.y_train), ("val", split.x_val, split.y_val),
                       ("test", split.x_test, split.y_test)):
        scores = evaluation.metrics("regression", y, loop.predict(model, data.export_feed(x)))
        out[f"{part}_r2"] = scores["r2"]
        out[f"{part}_mae"] = scores["mae"]
    out["gap"] = out["train_r2"] - out["val_r2"]
    return out
