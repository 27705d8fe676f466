"""Regularization side by side: none, L2, dropout, early stopping, and all three.

Notes: "Regularization" (penalty in the cost function, dropout, early
stopping); ERRATA #10, #11, #16.

"Regularization is any modification we make to a learning algorithm that is
intended to reduce its generalization error but not its training error"
(Goodfellow et al., quoted by the notes). To see one at work you need a model
that overfits: this recipe trains a wide network (two hidden layers of 256
units, 85,002 weights) on a small training split of the handwritten
digits (20%: 359 images; 40% validation, 40% test) for many epochs. Trained
plainly it learns every training image and leaves a clear gap to the
validation images. The same network, from the same seed, is then trained
four more ways: with an L2 penalty λ·Σw² on the hidden kernels (`--l2`), with
`Dropout` after each hidden layer (`--dropout`), with `EarlyStopping` on the
validation loss that keeps the best epoch's weights (`--patience`), and with
all three.

What to look at: the table (train / validation / test accuracy, gap = train −
validation, epochs run) and `regularization.png` (train and validation
accuracy and loss per variant). Accuracies are the final model's in inference
mode; the curves are Keras's logs, whose training accuracy is measured with
dropout on, and the dashed line marks the epoch early stopping kept. With the
defaults the plain network gets every training image right while missing
about 8% of the validation images, and early stopping halts within the first
fifteen epochs of the hundred. How much each regularizer narrows the gap, and
which wins on the test split, depends on the strengths chosen (try `--l2
0.01` or `--dropout 0.5`) and on the learning rate (try `--learning-rate
0.001`).

It takes the options of every training recipe: `--data FILE.csv --target
COLUMN` runs the same comparison on your table (a target of three or more
classes, since the output is a softmax; it is split 20 / 40 / 40 too), and a
run that is killed resumes each variant from its last saved epoch when the
same command is run again (`--restart` starts afresh). It exports no model,
so it takes no `--no-export`. `details`: `none`, `l2`, `dropout`,
`early_stopping`, `all`, each with `train_accuracy`, `val_accuracy`,
`test_accuracy`, `gap`, `epochs`.
"""

from recipes.core.options import TRAINING
from recipes.core.registry import register

VARIANTS = (
    ("none", "none", False, False, False),
    ("l2", "L2", True, False, False),
    ("dropout", "dropout", False, True, False),
    ("early_stopping", "early stopping", False, False, True),
    ("all", "all three", True, True, True),
)
"""(details key, label, L2?, dropout?, early stopping?) of each variant, in table order."""

TRAIN_FRACTION = 0.2
"""The share of the rows the networks train on; validation and test get 40% each."""


@register(
    "regularization",
    scenario="The three regularizers side by side on a network that overfits",
    data="digits (scikit-learn), 20% training split",
    summary="None vs L2 vs dropout vs early stopping vs all three: accuracy gap and epochs.",
    options=tuple(o for o in TRAINING if o != "no_export"),  # a comparison: nothing to export
    defaults={"epochs": 100, "batch_size": 32, "hidden": (256, 256), "learning_rate": 0.01,
              "l2": 0.001, "dropout": 0.3, "patience": 10},
)
def regularization(run):
    import keras
    import numpy as np

    from models.lessons import regularization as lesson
    from recipes.core import plots
    from recipes.core.report import Table

    config = run.config

    # Data: the handwritten digits (or your --data CSV), only 20% of them to train on.
    data = run.load_data("digits", task="multiclass", train_fraction=TRAIN_FRACTION)

    # The same wide network five ways, each from the same seed (so the same starting
    # weights): plain, L2 on the hidden kernels, Dropout after each hidden layer,
    # EarlyStopping on the validation loss, and all three.
    models, callbacks = {}, {}
    for key, label, use_l2, use_dropout, use_stopping in VARIANTS:
        with run.scope():
            network = keras.Sequential(name=f"regularization_{key}")
            for i, units in enumerate(config.hidden, start=1):
                network.add(keras.layers.Dense(
                    units, activation="relu", name=f"hidden_{i}",
                    kernel_regularizer=keras.regularizers.L2(config.l2) if use_l2 else None))
                if use_dropout:
                    network.add(keras.layers.Dropout(config.dropout, name=f"dropout_{i}"))
            network.add(keras.layers.Dense(data.n_classes, activation="softmax", name="output"))
            models[key] = data.with_preprocessing(network)
            models[key].compile(optimizer=run.optimizer(), loss="sparse_categorical_crossentropy",
                                metrics=["accuracy"])
        if use_stopping:
            callbacks[key] = [keras.callbacks.EarlyStopping(
                monitor="val_loss", patience=config.patience, restore_best_weights=True)]

    # Five independent trainings, as `run.fit` does each: on a CPU `run.fit_each`
    # trains them side by side, one per core, with the numbers of one after another.
    histories = run.fit_each(models, data.x_train, data.y_train, callbacks=callbacks,
                             epochs=config.epochs, batch_size=config.batch_size,
                             validation_data=(data.x_val, data.y_val))

    # Accuracy of each final model in inference mode (dropout off), on every split.
    results, curves, marks = {}, {}, {}
    for key, label, _, _, use_stopping in VARIANTS:
        history = histories[key].history
        results[key] = {**lesson.scores(models[key], "multiclass", data.encoded_split),
                        "epochs": len(history["loss"])}
        curves[label] = history
        if use_stopping:
            marks[label] = 1 + int(np.argmin(history["val_loss"]))

    settings = {"l2": f"L2 λ = {config.l2:g}", "dropout": f"Dropout({config.dropout:g})",
                "early_stopping": f"EarlyStopping(val_loss, patience {config.patience})",
                "all": "the three above together"}
    table = Table(
        "Same network, same seed, five ways (accuracy in inference mode; gap = train − val)",
        ["variant", "setting", "train accuracy", "val accuracy", "test accuracy", "gap",
         "epochs run"],
        [[label, settings.get(key, "-"), *(results[key][k] for k in
                                           ("train_accuracy", "val_accuracy", "test_accuracy",
                                            "gap", "epochs"))]
         for key, label, *_ in VARIANTS],
    )
    shape = " -> ".join([str(data.n_features), *(f"{u} relu" for u in config.hidden),
                         f"{data.n_classes} softmax"])
    weights = sum(int(np.prod(w.shape)) for w in network.trainable_weights)
    figure = plots.train_val_panels(
        curves, f"regularization: {len(data.split.y_train)} training rows, {shape}",
        marks=marks)
    return run.result(
        details=results, tables=[table], figures={"regularization.png": figure}, data=data,
        messages=[f"Model: {shape} ({weights:,} weights); {config.optimizer}, learning rate "
                  f"{config.learning_rate:g}, up to {config.epochs} epochs, batch "
                  f"{config.batch_size}"],
    )
