"""Regularization side by side: none, L2, dropout, early stopping, and all three.

Notes: "Regularization" (penalty in the cost function, dropout, early
stopping); NOTES-ERRATA #10, #11, #16.

"Regularization is any modification we make to a learning algorithm that is
intended to reduce its generalization error but not its training error"
(Goodfellow et al., quoted by the notes). To see one at work you need a model
that overfits: this recipe trains a wide network (two hidden layers of 256
units, about 85,000 weights) on a small training split of the handwritten
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
about one validation image in ten, and early stopping halts within the first
fifteen epochs of the hundred. How much each regularizer narrows the gap, and
which wins on the test split, depends on the strengths chosen (try `--l2
0.01` or `--dropout 0.5`) and on the learning rate: at `--learning-rate
0.001` the plain network overfits less, and the regularizers matter less.
`details`: `none`,
`l2`, `dropout`, `early_stopping`, `all`, each with `train_accuracy`,
`val_accuracy`, `test_accuracy`, `gap`, `epochs`.
"""

from recipes.registry import register

VARIANTS = (
    ("none", "none", False, False, False),
    ("l2", "L2", True, False, False),
    ("dropout", "dropout", False, True, False),
    ("early_stopping", "early stopping", False, False, True),
    ("all", "all three", True, True, True),
)
"""(details key, label, L2?, dropout?, early stopping?) of each variant, in table order."""

TRAIN_FRACTION = 0.2
"""The share of the digits the networks train on; validation and test get 40% each."""


@register(
    "regularization",
    scenario="The three regularizers side by side on a network that overfits",
    data="digits (scikit-learn), 20% training split",
    summary="None vs L2 vs dropout vs early stopping vs all three: accuracy gap and epochs.",
    options=("epochs", "batch_size", "hidden", "optimizer", "learning_rate", "l2", "dropout",
             "patience", "seed", "device"),
    defaults={"epochs": 100, "batch_size": 32, "hidden": (256, 256), "learning_rate": 0.01,
              "l2": 0.001, "dropout": 0.3, "patience": 10},
)
def run(config):
    import math
    import time

    import keras

    from models import data, mlp, training
    from recipes import _plots, _regularization, _supervised
    from recipes.errors import RunError
    from recipes.report import Result, Table

    started = time.perf_counter()
    dataset = data.load("digits")
    holdout = (1 - TRAIN_FRACTION) / 2
    split = data.split(dataset, config.seed, val_fraction=holdout, test_fraction=holdout)
    patience = config.patience
    results, histories, marks, train_seconds = {}, {}, {}, 0.0
    for key, label, use_l2, use_dropout, use_stopping in VARIANTS:
        device = _supervised.prepare(config)  # seeds again: every variant starts alike
        model = mlp.build(
            split.x_train, head="softmax", n_outputs=dataset.n_classes, hidden=config.hidden,
            l2=config.l2 if use_l2 else 0.0, dropout=config.dropout if use_dropout else 0.0,
            name=f"regularization_{key}",
        )
        training.compile(model, head="softmax", optimizer=config.optimizer,
                         learning_rate=config.learning_rate)
        callbacks = []
        if use_stopping:
            callbacks.append(keras.callbacks.EarlyStopping(
                monitor="val_loss", patience=patience, restore_best_weights=True))
        fit_started = time.perf_counter()
        history = training.fit(
            model, split.x_train, split.y_train, epochs=config.epochs,
            batch_size=config.batch_size, validation_data=(split.x_val, split.y_val),
            callbacks=callbacks, seed=config.seed, verbose=0,
        ).history
        train_seconds += time.perf_counter() - fit_started
        if not all(math.isfinite(v) for v in history["loss"]):
            raise RunError(
                f"Training the '{label}' variant diverged: the loss became "
                f"{history['loss'][-1]} (learning rate {config.learning_rate:g}). Try a "
                "learning rate ten times smaller with `--learning-rate`."
            )
        results[key] = {**_regularization.scores(model, "multiclass", split),
                        "epochs": len(history["loss"])}
        histories[label] = history
        if callbacks:
            marks[label] = 1 + min(range(len(history["val_loss"])),
                                   key=history["val_loss"].__getitem__)
        if config.verbose:
            row = results[key]
            print(f"{label}: train {row['train_accuracy']:.4f}, val {row['val_accuracy']:.4f}, "
                  f"test {row['test_accuracy']:.4f}, {row['epochs']} epochs", flush=True)

    settings = {"l2": f"L2 λ = {config.l2:g}", "dropout": f"Dropout({config.dropout:g})",
                "early_stopping": f"EarlyStopping(val_loss, patience {patience})"}
    settings["all"] = "the three above together"
    table = Table(
        "Same network, same seed, five ways (accuracy in inference mode; gap = train − val)",
        ["variant", "setting", "train accuracy", "val accuracy", "test accuracy", "gap",
         "epochs run"],
        [[label, settings.get(key, "-"), *(results[key][k] for k in
                                           ("train_accuracy", "val_accuracy", "test_accuracy",
                                            "gap", "epochs"))]
         for key, label, *_ in VARIANTS],
    )
    hidden = " -> ".join(f"{u} relu" for u in config.hidden)
    figure = _plots.train_val_panels(
        histories, f"regularization: {len(split.y_train)} training digits, "
        f"64 -> {hidden} -> 10 softmax", marks=marks)
    return Result(
        recipe=config.recipe,
        details=results,
        timing={"train_seconds": train_seconds, "total_seconds": time.perf_counter() - started},
        tables=[table],
        figures={"regularization.png": figure},
        messages=[
            f"Data: {dataset.description}; {len(split.y_train)} train / {len(split.y_val)} "
            f"validation / {len(split.y_test)} test rows",
            f"Model: 64 -> {hidden} -> 10 softmax; {config.optimizer}, learning rate "
            f"{config.learning_rate:g}, up to {config.epochs} epochs, batch {config.batch_size}",
            f"Device: {device}",
        ],
    )
