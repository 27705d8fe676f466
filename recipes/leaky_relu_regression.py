"""Regression of a target with both signs: Leaky ReLU hidden units, a linear output.

Notes: "Leaky ReLU activation function" and the summarization table
(continuous, both +ve and -ve numbers -> Leaky ReLU); ERRATA #7.

A target that can be negative cannot come out of a ReLU output, which clips
everything below 0. The notes answer with Leaky ReLU, max(αz, z): for z < 0
it passes αz instead of 0, so the unit keeps a gradient there and never "dies".
In Keras the usual place for it is the hidden layers, with a linear output that
can reach any value. α is a small positive constant, 0 < α < 1 (the notes say
"α less than 0", a slip, ERRATA #7); Keras's `leaky_relu` uses 0.2.

The data: scikit-learn ships no regression set whose raw target has both signs,
so this recipe uses the diabetes data with the progression score centred on
the cohort mean (152.13): the target reads "progression above (+) or below (-)
the average patient's", and about half of the values are negative. Same
patients and features as `relu-regression`, so the two recipes compare
directly; a ReLU output could not produce the negative half.

What to look at: R² and MAE against the training mean and linear regression,
and `details.negative_share`, the share of test targets below zero.
"""

from recipes.core.options import TRAINING
from recipes.core.registry import register


@register(
    "leaky-relu-regression",
    scenario="Continuous target of both signs: Leaky ReLU hidden units, linear output",
    data="diabetes progression, centred (scikit-learn)",
    summary="Regression MLP with Leaky ReLU hidden units for a target that goes negative.",
    options=TRAINING,
    defaults={"epochs": 100, "batch_size": 32, "hidden": (16, 8), "learning_rate": 0.01,
              "l2": 0.01, "patience": 10},
)
def leaky_relu_regression(run):
    import keras
    import numpy as np

    config = run.config

    # Data: the diabetes score centred on the cohort mean (or your --data CSV).
    # The network learns it standardized (data.y_train); the export undoes that.
    data = run.load_data("diabetes_centered", task="regression")

    # Model: hidden Leaky ReLU layers (α = 0.2) and a linear output, which can reach
    # any value of either sign.
    with run.scope():
        network = keras.Sequential(name="leaky_relu_regression")
        for units in config.hidden:
            network.add(keras.layers.Dense(
                units, activation="leaky_relu",
                kernel_regularizer=keras.regularizers.L2(config.l2) if config.l2 else None))
            if config.dropout:
                network.add(keras.layers.Dropout(config.dropout))
        network.add(keras.layers.Dense(1, activation="linear"))
        model = data.with_preprocessing(network)
        model.compile(optimizer=run.optimizer(), loss="mean_squared_error", metrics=["mae"])

    # Train, with early stopping on the validation loss when --patience is set.
    callbacks = []
    if config.patience:
        callbacks.append(keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=config.patience, restore_best_weights=True))
    history = run.fit(model, data.x_train, data.y_train, epochs=config.epochs,
                      batch_size=config.batch_size, validation_data=(data.x_val, data.y_val),
                      callbacks=callbacks)

    # Evaluate on the test split, against the baselines, and export.
    negative = float(np.mean(data.split.y_test < 0))
    return run.finish(model, data, history, details={"negative_share": negative},
                      messages=[f"Share of test targets below zero: {negative:.2f}"])
