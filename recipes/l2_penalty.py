"""L2 penalty: what Keras adds to the loss, and how it shrinks the weights.

Notes: "Regularization Penalty in Cost Function"; NOTES-ERRATA #10.

The notes write the regularized cost as J = 1/(2n)·Σ(ŷ − y)² + λ·ΣW²: the
data's error plus a penalty on large weights, as in ridge regression. In
Keras the penalty is a layer argument, `Dense(...,
kernel_regularizer=keras.regularizers.L2(λ))`, and what it adds to the loss
is exactly λ·Σw² over that layer's kernel (its biases are not penalized).
Keras's mean squared error is 1/n·Σ(ŷ − y)², though, not 1/(2n) (NOTES-ERRATA
#10): the 1/2 is a textbook convenience that tidies the derivative, and
Keras does not use it.

This recipe predicts the diabetes data's disease progression (a positive
score, so a ReLU output and MSE) with `--l2 λ` on every hidden kernel, and
checks the loss against a hand computation from the final weights: the
penalty, λ·Σw² over the hidden kernels, equals the sum of `model.losses`, and
Keras's training loss equals (1/n)·Σ(ŷ − y)² / scale² + λ·Σw² (the data term
is weighted by 1/scale², see `models.training.compile`; with the notes' 1/(2n)
it would not match). Then it trains the same model from the same starting
weights (same seed) with no penalty and compares the two.

What to look at: the loss table (Keras = by hand to float precision), Σw²
per layer with and without the penalty (the penalized hidden kernels end far
smaller; the unpenalized output layer need not), `l2_weights.png` (Σw² by
epoch, and the weights' histogram pulled towards 0), and the train / test R²
of both models. `details`: `l2`, `penalty` (`keras`, `by_hand`,
`difference`), `loss` (`keras_total`, `by_hand_total`, `data_term`,
`data_term_notes_half`, `loss_weight`), `squared_weights` (`with_l2`,
`without_l2`, per layer), `with_l2` and `without_l2` (train / validation /
test R² and MAE).
"""

from recipes.options import TRAINING
from recipes.registry import register


@register(
    "l2-penalty",
    scenario="L2 penalty in the cost: Keras adds λ·Σw², and the weights shrink",
    data="diabetes progression (scikit-learn)",
    summary="ReLU regression with an L2 kernel penalty, checked by hand, against no penalty.",
    options=TRAINING,
    defaults={"epochs": 100, "batch_size": 32, "hidden": (64, 32), "learning_rate": 0.01,
              "l2": 0.01},
)
def run(config):
    from dataclasses import replace

    import numpy as np

    from recipes import _plots, _regularization, _supervised
    from recipes.report import Table

    _regularization.require_positive(config, "l2", "--l2")
    norms = _regularization.SquaredWeightsLog()
    trained = _supervised.train(config, head="relu", dataset="diabetes", callbacks=[norms])
    plain_norms = _regularization.SquaredWeightsLog()
    plain = _supervised.train(replace(config, l2=0.0), head="relu", dataset="diabetes",
                              callbacks=[plain_norms], verbose=0)
    model, split = trained.model, trained.split

    # The loss Keras minimizes, on the whole training split with the final weights.
    x, y = split.x_train, split.y_train
    y_pred = model(x, training=False)
    keras_total = float(model.compute_loss(x=x, y=y, y_pred=y_pred, training=False))
    keras_penalty = _regularization.keras_penalty(model)
    by_hand_penalty = _regularization.l2_by_hand(model)
    weight = 1.0 / _scale(trained) ** 2
    errors = np.asarray(y_pred, dtype=np.float64).reshape(-1) - np.asarray(y, dtype=np.float64)
    data_term = weight * float(np.mean(errors ** 2))         # Keras: 1/n
    notes_half = weight * float(np.sum(errors ** 2)) / (2 * len(errors))  # the notes: 1/(2n)

    with_l2 = _r2_by_split(model, split)
    without_l2 = _r2_by_split(plain.model, split)
    squared = _regularization.squared_weights(model)
    squared_plain = _regularization.squared_weights(plain.model)

    details = {
        "l2": config.l2,
        "penalty": {"keras": keras_penalty, "by_hand": by_hand_penalty,
                    "difference": abs(keras_penalty - by_hand_penalty)},
        "loss": {"keras_total": keras_total, "by_hand_total": data_term + by_hand_penalty,
                 "data_term": data_term, "data_term_notes_half": notes_half,
                 "loss_weight": weight},
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
                ["data term (1/n)·Σ(ŷ−y)² / scale²", data_term, keras_total - keras_penalty],
                ["total J", data_term + by_hand_penalty, keras_total],
                ["the notes' (1/2n)·Σ(ŷ−y)² / scale² (not Keras's)", notes_half, "-"],
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
                                         for layer in _regularization.hidden_layers(model)]),
        "no penalty": np.concatenate([np.ravel(layer.kernel)
                                      for layer in _regularization.hidden_layers(plain.model)]),
    }
    figures = {"l2_weights.png": _plots.weight_shrinkage(
        {f"L2 λ = {lam}": norms.values, "no penalty": plain_norms.values}, kernels,
        f"l2-penalty: hidden kernels with and without λ·Σw² (λ = {lam})")}
    return _supervised.finish(trained, details=details, tables=tables, figures=figures, messages=[
        f"Penalty: Keras adds {keras_penalty:.6g} = λ·Σw² by hand {by_hand_penalty:.6g} "
        f"(difference {abs(keras_penalty - by_hand_penalty):.2g}); MSE is 1/n·Σ, not 1/(2n)",
    ])


def _scale(trained):
    """The target scale the regression model was compiled with (its loss weight is 1/scale²)."""
    from models import mlp

    return mlp.target_scale(trained.head, trained.split.y_train)[1]


def _r2_by_split(model, split):
    """R² and MAE of `model` on each split, and the gap = train − validation R²."""
    from models import evaluation, training

    out = {}
    for part, x, y in (("train", split.x_train, split.y_train), ("val", split.x_val, split.y_val),
                       ("test", split.x_test, split.y_test)):
        scores = evaluation.metrics("regression", y, training.predict(model, x))
        out[f"{part}_r2"] = scores["r2"]
        out[f"{part}_mae"] = scores["mae"]
    out["gap"] = out["train_r2"] - out["val_r2"]
    return out
