"""Regression of a positive target: a ReLU output and mean squared error.

Notes: "Activation functions - summarization table" (continuous, finite
positive numbers -> ReLU) and "Loss functions"; ERRATA #8.

For a continuous target that is never negative, the notes put a ReLU on the
output: max(0, z) passes any positive value and clips negatives to 0. The loss
is the mean squared error; the notes' loss table says "logloss" for continuous
targets, a slip (ERRATA #8): log loss is cross-entropy, for classes.
This recipe predicts the diabetes data's disease progression one year after
baseline (442 patients, 10 measurements, a score from 25 to 346). The network
learns the score divided by its root mean square, a target of about unit size
that keeps its sign, so its ReLU output and every optimizer's step size stay
sensible; the exported model ends with a `Rescaling` layer that multiplies
back, so it predicts in the score's own units. The training loss is the MSE of
that unit-size target.

The defaults regularize (L2 0.01 on the hidden kernels, early stopping with
patience 10): 442 rows are few, and an unregularized MLP overfits them.

What to look at: R² (share of the variance explained) and MAE on the test
split against the training mean (R² = 0) and linear regression. On this small,
noisy data set the MLP lands near the linear fit (over seeds 0-3 and 42, test
R² 0.35-0.51 against linear regression's 0.34-0.45), which is itself a lesson:
a neural network earns its keep on non-linear structure, not on every table.
"""

from recipes.core.options import TRAINING
from recipes.core.registry import register


@register(
    "relu-regression",
    scenario="Continuous positive target: ReLU output, mean squared error",
    data="diabetes progression (scikit-learn)",
    summary="Regression MLP whose ReLU output can only predict values >= 0.",
    options=TRAINING,
    defaults={"epochs": 100, "batch_size": 32, "hidden": (16, 8), "learning_rate": 0.01,
              "l2": 0.01, "patience": 10},
)
def relu_regression(run):
    import keras

    config = run.config

    # Data: the diabetes progression score (or your --data CSV), split 60 / 20 / 20.
    # The network learns the score over its root mean square (data.y_train, about unit
    # size); the export multiplies back, so it predicts the score itself.
    data = run.load_data("diabetes", task="positive")

    # Model: hidden ReLU layers and a ReLU output unit: max(0, z) is never negative.
    with run.scope():
        network = keras.Sequential(name="relu_regression")
        for units in config.hidden:
            network.add(keras.layers.Dense(
                units, activation="relu",
                kernel_regularizer=keras.regularizers.L2(config.l2) if config.l2 else None))
            if config.dropout:
                network.add(keras.layers.Dropout(config.dropout))
        network.add(keras.layers.Dense(1, activation="relu"))
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
    return run.finish(model, data, history)
