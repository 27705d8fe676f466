"""One linear neuron is linear regression: the notes' sample table, then real data.

Notes: "Linear Regression" (y = a·X + b; the sample table X1, X2, X3 → y and
y = a1·X1 + a2·X2 + a3·X3 + b) and "Fundamentals of Neural Networks" (a unit
neuron). The notes' numbers are given, not computed: no ERRATA entry.

A neuron without an activation (Keras's `Dense(1)`, activation linear)
computes ŷ = w·x + b: the linear regression equation, with the weights a1, a2,
a3 as its kernel and b as its bias. Trained on the mean squared error it
minimizes the same quantity as ordinary least squares.

First the notes' own table: three rows, (20, 30, 10) → 58, (30, 10, 25) → 67,
(21, 15, 31) → 78. `Dense(1)` on the raw values, trained with Adam on the
whole table (`SAMPLE_EPOCHS` full-batch steps at learning rate
`SAMPLE_LEARNING_RATE`) drives the MSE to about 0. That is no feat of
learning: three rows and four parameters (a1, a2, a3, b) are three equations
in four unknowns, and a whole line of weight sets fits them exactly. The
neuron finds one of them; the least-squares solution of smallest norm
(`numpy.linalg.lstsq`) is another, printed beside it. Then real data: the
diabetes progression score (442 patients, 10 measurements, or your
`--data`/`--target` CSV), the neuron behind the library's `Normalization`
front-end, trained full-batch on the training split, against scikit-learn's
`StandardScaler` + `LinearRegression` on the same rows. Both act on
standardized features and the target in the network's training units, so
their weights can be set side by side.

What to look at: the sample-table loss (about 1e-8 or 0), the largest weight
difference between the neuron and `LinearRegression` (about 1e-5 with the
defaults: the same model, found by gradient steps instead of a solver) and
the two test R²s (equal to three decimals). The neuron is exported like any
training recipe's model. `details`: `sample_table_loss`, `sample_table`
(`rows`, `parameters`, `weights`, `bias`, `predictions`, `lstsq_weights`,
`lstsq_bias`), `neuron_r2`, `linear_regression_r2`, `max_weight_diff`,
`bias_diff`, `weights`, `linear_regression_weights`.
"""

from recipes.core.options import TRAINING
from recipes.core.registry import register

SAMPLE_X = ((20.0, 30.0, 10.0), (30.0, 10.0, 25.0), (21.0, 15.0, 31.0))
SAMPLE_Y = (58.0, 67.0, 78.0)
"""The notes' sample table: X1, X2, X3 -> y."""

SAMPLE_EPOCHS = 500
SAMPLE_LEARNING_RATE = 0.1
"""Full-batch Adam steps on the sample table, and their step size (raw values ~10-30)."""

OPTIONS = tuple(o for o in TRAINING if o not in ("hidden", "l2", "dropout", "patience"))
"""The training options, less those of hidden layers and early stopping (least squares
has neither)."""


@register(
    "linear-unit",
    scenario="One linear neuron is linear regression",
    data="the notes' sample table, then diabetes progression (scikit-learn)",
    summary="Dense(1) with MSE fits the notes' 3-row table exactly, and matches "
            "scikit-learn's LinearRegression on real data.",
    options=OPTIONS,
    defaults={"epochs": 1000, "batch_size": "full", "learning_rate": 0.05},
)
def linear_unit(run):
    import dataclasses

    import keras
    import numpy as np
    from sklearn.linear_model import LinearRegression
    from sklearn.preprocessing import StandardScaler

    from models.training import evaluation
    from recipes.core.report import Table

    # One neuron and no hidden layer: the exported metadata records `hidden` as [].
    config = run.config = dataclasses.replace(run.config, hidden=())

    # 1. The notes' sample table: y = a1·X1 + a2·X2 + a3·X3 + b, one neuron on raw values.
    x_table = np.array(SAMPLE_X, dtype=np.float32)
    y_table = np.array(SAMPLE_Y, dtype=np.float32)
    with run.scope():
        neuron = keras.Sequential(
            [keras.Input((3,)), keras.layers.Dense(1, name="neuron")], name="sample_table")
        neuron.compile(optimizer=run.optimizer("adam", SAMPLE_LEARNING_RATE),
                       loss="mean_squared_error")
    table_history = run.fit(neuron, x_table, y_table, epochs=SAMPLE_EPOCHS, batch_size="full",
                            variant="sample_table")
    sample_loss = float(neuron.evaluate(x_table, y_table, verbose=0))
    a, b = (w.reshape(-1) for w in neuron.get_layer("neuron").get_weights())
    with_ones = np.hstack([x_table.astype(np.float64), np.ones((3, 1))])
    exact, *_ = np.linalg.lstsq(with_ones, y_table.astype(np.float64), rcond=None)

    # 2. Real data: the diabetes score (or your --data CSV), split 60 / 20 / 20.
    data = run.load_data("diabetes", task="regression")

    # Model: the Normalization front-end, then one linear neuron, ŷ = w·x + b.
    with run.scope():
        network = keras.Sequential([keras.layers.Dense(1, name="neuron")], name="linear_unit")
        model = data.with_preprocessing(network)
        model.compile(optimizer=run.optimizer(), loss="mean_squared_error", metrics=["mae"])
    history = run.fit(model, data.x_train, data.y_train, epochs=config.epochs,
                      batch_size=config.batch_size, validation_data=(data.x_val, data.y_val))

    # Least squares on the same rows, in the same units (standardized x, training-unit y).
    split = data.split
    scaler = StandardScaler().fit(split.x_train)
    regression = LinearRegression().fit(scaler.transform(split.x_train), data.y_train)
    offset, scale = data.target_scale
    regression_pred = offset + scale * regression.predict(scaler.transform(split.x_test))
    regression_r2 = evaluation.metrics("regression", split.y_test, regression_pred[:, None])["r2"]
    neuron_r2 = run.evaluate(model, data)["r2"]
    kernel, bias = (w.reshape(-1) for w in network.get_layer("neuron").get_weights())
    max_weight_diff = float(np.max(np.abs(kernel - regression.coef_)))
    bias_diff = float(abs(bias[0] - regression.intercept_))

    table = Table(
        "The notes' sample table: one Dense(1) neuron (Adam) and the smallest-norm exact fit",
        ["", "a1", "a2", "a3", "b", "predictions (58, 67, 78)", "MSE"],
        [["neuron", *map(float, a), float(b[0]),
          [float(v) for v in neuron(x_table).numpy().reshape(-1)], sample_loss],
         ["numpy.linalg.lstsq", *map(float, exact), [float(v) for v in with_ones @ exact],
          float(np.mean((with_ones @ exact - y_table) ** 2))]])
    weights = Table(
        f"{data.dataset.name}: the neuron's weights against LinearRegression's "
        "(standardized features, target in training units)",
        ["feature", "neuron", "LinearRegression", "|difference|"],
        [[name, float(w), float(c), f"{abs(w - c):.1e}"]
         for name, w, c in zip(data.feature_names, kernel, regression.coef_)]
        + [["bias / intercept", float(bias[0]), float(regression.intercept_), f"{bias_diff:.1e}"],
           ["test R²", neuron_r2, regression_r2, f"{abs(neuron_r2 - regression_r2):.1e}"]])
    return run.finish(
        model, data, history,
        details={
            "sample_table_loss": sample_loss,
            "sample_table": {
                "rows": len(SAMPLE_Y), "parameters": 4, "weights": a.tolist(),
                "bias": float(b[0]), "predictions": neuron(x_table).numpy().reshape(-1).tolist(),
                "epochs": len(table_history.history["loss"]),
                "lstsq_weights": exact[:3].tolist(), "lstsq_bias": float(exact[3]),
            },
            "neuron_r2": neuron_r2,
            "linear_regression_r2": regression_r2,
            "max_weight_diff": max_weight_diff,
            "bias_diff": bias_diff,
            "weights": kernel.tolist(),
            "linear_regression_weights": regression.coef_.tolist(),
        },
        tables=[table, weights],
        messages=[
            f"Sample table: MSE {sample_loss:.2g} after {SAMPLE_EPOCHS} full-batch steps. Three "
            "rows, four parameters (a1, a2, a3, b): three equations in four unknowns, so many "
            "weight sets fit exactly; the neuron found one, lstsq's smallest-norm one is another.",
            f"Real data: largest |neuron weight - LinearRegression coefficient| "
            f"{max_weight_diff:.1e}; test R² {neuron_r2:.4f} against {regression_r2:.4f}.",
        ],
    )
