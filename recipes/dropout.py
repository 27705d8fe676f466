"""Dropout: random units zeroed while training, nothing dropped at inference.

Notes: "Dropout"; ERRATA #11.

The notes say dropout "drops the nodes which do not create any meaningful
output". It does not choose: `keras.layers.Dropout(rate)` zeroes each unit at
random with probability `rate`, a fresh draw for every row of every batch,
and only while training. The units that survive are scaled by 1/(1 − rate),
so a layer's expected output equals its output without dropout. At inference
(`model.predict`, `model(x)`, the exported model) the layer passes its input
through unchanged, and the same input gives the same output every time
(ERRATA #11). Because no unit can count on another being there, the
network cannot lean on fragile co-adapted units, which is why dropout
regularizes.

This recipe trains an MLP on the handwritten digits with `Dropout(--dropout)`
after each hidden layer, then opens it up on the test rows: the dropout layer
in training mode zeroes about `rate` of the units and multiplies every
survivor by exactly 1/(1 − rate); averaged over many training passes its
output comes back to the inference output's scale; the whole model's outputs
differ from one training pass to the next but not between inference calls.
It also trains the same model (same seed) without dropout and compares them.

What to look at: the mechanism table (zeroed share ≈ rate, survivor scale =
1/(1 − rate), inference identical), `dropout_passes.png` (one digit's hidden
units at inference and in a few training passes), and the train / validation
/ test accuracy of both models (train accuracy here is the model's in
inference mode, not the one Keras logs with dropout on). `details`: `rate`,
`training` (`zeroed_fraction`, `survivor_scale_min`, `survivor_scale_max`,
`expected_scale`, `outputs_vary`, `max_difference_between_passes`),
`inference` (`deterministic`, `max_difference_between_passes`,
`layer_is_identity`), `average_of_training_passes` (`passes`,
`activation_scale_ratio`, `probability_mean_abs_difference`,
`argmax_agreement`), `with_dropout` and `without_dropout` (`train_accuracy`,
`val_accuracy`, `test_accuracy`, `gap`).
"""

from recipes.core.options import TRAINING
from recipes.core.registry import register

PASSES = 200
"""Training-mode passes averaged to compare with the inference output."""
PER_CALL = 40
"""Passes drawn in one call (`_average_of_passes`); `PASSES` is a multiple of it."""


@register(
    "dropout",
    scenario="Dropout: random units dropped in training, none at inference",
    data="digits (scikit-learn)",
    summary="Digits MLP with Dropout: the mechanism opened up, and against no dropout.",
    options=TRAINING,
    defaults={"epochs": 40, "batch_size": 32, "hidden": (256, 128), "learning_rate": 0.001,
              "dropout": 0.3},
)
def dropout(run):
    import keras
    import numpy as np

    from models.lessons import regularization as lesson
    from recipes.core import plots
    from recipes.core.errors import UsageError
    from recipes.core.report import Table

    config = run.config
    rate = config.dropout
    if not rate > 0:
        raise UsageError(
            f"`--dropout` must be > 0 for `{config.recipe}`, which compares the model with this "
            f"regularizer against the same model without it. Received: --dropout={rate:g}. "
            f"See `python -m recipes.run {config.recipe} --help`."
        )

    # Data: the 8x8 handwritten digits (or your --data CSV), split 60 / 20 / 20 with the seed.
    data = run.load_data("digits", task="multiclass")

    # Two models from the same seed: Dropout(rate) after each hidden layer, and none.
    models, callbacks = {}, {}
    for variant, drop in (("dropout", rate), ("no_dropout", 0.0)):
        with run.scope():
            network = keras.Sequential(name=f"dropout_{variant}")
            for i, units in enumerate(config.hidden, start=1):
                network.add(keras.layers.Dense(
                    units, activation="relu", name=f"hidden_{i}",
                    kernel_regularizer=keras.regularizers.L2(config.l2) if config.l2 else None))
                if drop:
                    network.add(keras.layers.Dropout(drop, name=f"dropout_{i}"))
            network.add(keras.layers.Dense(data.n_classes, activation="softmax", name="output"))
            models[variant] = data.with_preprocessing(network)
            models[variant].compile(optimizer=run.optimizer(),
                                    loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        if config.patience:
            callbacks[variant] = [keras.callbacks.EarlyStopping(
                monitor="val_loss", patience=config.patience, restore_best_weights=True)]

    # Two independent trainings, as `run.fit` does each: on a CPU `run.fit_each`
    # trains them side by side, one per core, with the numbers of one after another.
    histories = run.fit_each(models, data.x_train, data.y_train, callbacks=callbacks,
                             epochs=config.epochs, batch_size=config.batch_size,
                             validation_data=(data.x_val, data.y_val))
    model, plain = models["dropout"], models["no_dropout"]
    network = model.get_layer("dropout_dropout")  # the Sequential behind the front-end
    x = data.x_test

    # The first dropout layer alone, on the activations that enter it (inference mode).
    layer = network.get_layer("dropout_1")
    normalized = model.get_layer("normalization")(x)
    entering = np.asarray(network.get_layer("hidden_1")(normalized))
    dropped = np.asarray(layer(entering, training=True))
    alive = entering != 0                 # ReLU has zeroed some units already
    survivors = dropped != 0
    zeroed_fraction = float(np.sum(alive & ~survivors) / np.sum(alive))
    scale = dropped[survivors] / entering[survivors]
    passed = np.asarray(layer(entering, training=False))
    average = _average_of_passes(layer, entering)
    scale_ratio = float(average.sum() / entering.sum())

    # The whole model: training passes differ, inference calls do not.
    first, second = (np.asarray(model(x, training=True)) for _ in range(2))
    inference = np.asarray(model(x, training=False))
    again = np.asarray(model(x, training=False))
    mc = _average_of_passes(model, x)

    with_dropout = lesson.scores(model, "multiclass", data.encoded_split)
    without_dropout = lesson.scores(plain, "multiclass", data.encoded_split)
    details = {
        "rate": rate,
        "training": {
            "zeroed_fraction": zeroed_fraction,
            "survivor_scale_min": float(scale.min()),
            "survivor_scale_max": float(scale.max()),
            "expected_scale": 1.0 / (1.0 - rate),
            "outputs_vary": bool(np.any(first != second)),
            "max_difference_between_passes": float(np.max(np.abs(first - second))),
        },
        "inference": {
            "deterministic": bool(np.array_equal(inference, again)),
            "max_difference_between_passes": float(np.max(np.abs(inference - again))),
            "layer_is_identity": bool(np.array_equal(passed, entering)),
        },
        "average_of_training_passes": {
            "passes": PASSES,
            "activation_scale_ratio": scale_ratio,
            "probability_mean_abs_difference": float(np.mean(np.abs(mc - inference))),
            "argmax_agreement": float(np.mean(mc.argmax(1) == inference.argmax(1))),
        },
        "with_dropout": with_dropout,
        "without_dropout": without_dropout,
    }
    training_details, average_details = details["training"], details["average_of_training_passes"]
    tables = [
        Table(
            f"Dropout({rate:g}) opened up (test rows; the layer after hidden_1)",
            ["what", "measured", "expected"],
            [
                ["training: share of active units zeroed", zeroed_fraction, rate],
                ["training: survivor scale, min", float(scale.min()), 1 / (1 - rate)],
                ["training: survivor scale, max", float(scale.max()), 1 / (1 - rate)],
                [f"training: mean of {PASSES} passes / inference output", scale_ratio, 1.0],
                ["training: two passes of the model differ by (max |Δp|)",
                 training_details["max_difference_between_passes"], "> 0"],
                ["inference: two calls differ by (max |Δp|)",
                 details["inference"]["max_difference_between_passes"], 0.0],
                ["inference: the layer passes its input unchanged",
                 details["inference"]["layer_is_identity"], True],
                [f"model: mean |Δp| of {PASSES} averaged training passes vs inference",
                 average_details["probability_mean_abs_difference"], "small"],
                [f"model: same class from {PASSES} averaged training passes as inference",
                 average_details["argmax_agreement"], "≈ 1"],
            ],
        ),
        Table(
            "With and without dropout: same seed (accuracy in inference mode; gap = train − val)",
            ["model", "train accuracy", "val accuracy", "test accuracy", "gap"],
            [[f"dropout {rate:g}", *(with_dropout[k] for k in _COLUMNS)],
             ["no dropout", *(without_dropout[k] for k in _COLUMNS)]],
        ),
    ]
    row = int(np.argmax(alive.sum(axis=1)))  # the test digit with the most active units
    shown = slice(0, min(64, entering.shape[1]))
    passes = [np.asarray(layer(entering[row:row + 1], training=True))[0, shown] for _ in range(4)]
    figures = {"dropout_passes.png": plots.dropout_passes(
        entering[row, shown], passes, rate,
        f"dropout: one test digit's first {shown.stop} hidden units, Dropout({rate:g})")}

    # Evaluate the dropout model on the test split, against the baselines, and export it.
    return run.finish(model, data, histories["dropout"], details=details, tables=tables,
                      figures=figures, messages=[
        f"Dropout: training zeroed {zeroed_fraction:.1%} of active units (rate {rate:g}) and "
        f"scaled survivors by {float(scale.mean()):.4f} = 1/(1 − {rate:g}); inference is "
        f"{'deterministic' if details['inference']['deterministic'] else 'NOT deterministic'}",
    ])


_COLUMNS = ("train_accuracy", "val_accuracy", "test_accuracy", "gap")


def _average_of_passes(layer, x):
    """The mean of `PASSES` training-mode outputs of `layer` (or a model) for rows `x`.

    The rows go in repeated `PER_CALL` times in one batch, `PASSES // PER_CALL`
    calls in all: every copy gets its own random draw, as in separate passes.
    One call of all `PASSES` copies would need about 0.4 GB of fresh memory
    for the digits' test rows, and first touching that much costs about 1 s
    on a 2-core VM; calls of `PER_CALL` copies reuse the same 15 MB a tensor.
    """
    import numpy as np
    import tensorflow as tf

    copies = tf.tile(x, (PER_CALL, 1))
    total = 0.0
    for _ in range(PASSES // PER_CALL):
        outputs = np.asarray(layer(copies, training=True), dtype=np.float64)
        total = total + outputs.reshape(PER_CALL, *x.shape[:1], *outputs.shape[1:]).sum(axis=0)
    return total / PASSES
