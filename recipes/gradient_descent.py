"""Gradient descent three ways: full batch, stochastic and mini-batch, measured.

Notes: "Gradient descent" (the walk of one weight, W_new = W_old − η·∂C/∂w)
and "Types of gradient descent"; ERRATA #5, #12, #13.

The notes sort gradient descent by how many rows feed each step: all of them
(full batch), one (stochastic) or a small batch (mini-batch), and assert that
full batch has "low time complexity" while stochastic is "very slow". They
call the point of lowest loss "Gradient Descent"; gradient descent is the
method, and the point it heads for is a (local) minimum of the loss
(ERRATA #5). This recipe trains the same MLP on the same breast-cancer
rows, from the same initial weights, for the same number of epochs, three
ways: batch size = the whole training split (1 step per epoch), 1 (one step
per row), and `--batch-size` (32). It measures what the notes assert
(ERRATA #12): steps per epoch, wall seconds, the training loss reached
and the test accuracy. The mini-batch model is the one exported. The loop
over the three is in the recipe, one `run.fit(..., variant=NAME)` each, so a
killed run resumes at the variant and epoch it reached.

The notes also walk one weight down the loss, 0.9 → 0.68 → 0.51 → …, with
"values assumed" (ERRATA #13). Here the walk is real: one sigmoid
neuron, p = σ(w·x), one weight and no bias, on the standardized "mean
texture" of the training rows, with the log loss C(w); starting at w = 0.9
with η = 0.5, each step prints W_old, C(W_old), ∂C/∂w = mean((p − y)·x) and
W_new = W_old − η·∂C/∂w computed by hand, beside the weight Keras's `SGD`
reaches taking the same full-batch steps: 0.9 → 0.7022 → 0.5205 → … → −0.3690
after 10 steps, crossing zero on the way down the loss.

What to look at: `loss_curves.png` and the table. By epoch, stochastic is
far ahead: it took one step per training row (341) for full batch's one. By
wall seconds, stochastic pays for those steps with the slowest epochs, while
full batch makes so little progress per epoch that it is behind by the clock
too; mini-batch gets most of stochastic's progress for a fraction of its time
per epoch. (`seconds` are wall seconds of the training epochs without the
one-off tracing of the training loop, which costs every variant about the
same and is reported as `tracing_seconds`.) In the walk the gradient shrinks
as the loss flattens, so the steps shrink too, and the two weight columns
agree to float32 rounding (the tests hold them within 1e-5).

`details`: `full-batch`, `stochastic`, `mini-batch` (each `batch_size`,
`steps_per_epoch`, `seconds`, `seconds_per_epoch`, `tracing_seconds`,
`final_loss`, `test_metric`, `initial_weights_sha256`), `walk` (one entry per
step: `step`, `weight`, `loss`, `gradient`, `new_weight`, `keras_new_weight`),
`walk_max_abs_diff` and `walk_settings`.
"""

from recipes.core.registry import register

OPTIONS = ("epochs", "batch_size", "hidden", "optimizer", "learning_rate", "seed", "data",
           "target", "drop", "categorical", "output_dir", "no_export", "report", "device",
           "restart")
"""`--batch-size` is the mini-batch's size. No early stopping, regularizers or
strategies: the three runs must take the same epochs on one device. With
`--data` (a two-class target) the walk takes the CSV's first feature column."""

WALK = {"feature": "mean texture", "start": 0.9, "learning_rate": 0.5, "steps": 10}
"""The notes' walk: one weight from 0.9, η = 0.5. Its first steps are 0.198 and 0.182
(the notes assume 0.22 and 0.17)."""


@register(
    "gradient-descent",
    scenario="Full-batch vs stochastic vs mini-batch gradient descent",
    data="breast cancer (scikit-learn)",
    summary="Same model, data and epochs at batch sizes n, 1 and 32: steps, seconds, loss; "
            "and the notes' one-weight walk done for real.",
    options=OPTIONS,
    defaults={"epochs": 30, "batch_size": 32, "hidden": (16, 8), "optimizer": "sgd",
              "learning_rate": 0.05},
)
def gradient_descent(run):
    import keras

    from models.data import fingerprint
    from models.lessons import optimization
    from recipes.core import plots
    from recipes.core.report import Table

    config = run.config

    # Data: the breast-cancer table (or your --data CSV with a two-class target).
    data = run.load_data("breast_cancer", task="binary")
    n_train = len(data.y_train)

    # The three kinds of gradient descent differ only in how many rows feed each step.
    batch_sizes = {"full-batch": "full", "stochastic": 1, "mini-batch": config.batch_size}
    models, histories, variants, curves = {}, {}, {}, {}
    for variant, batch_size in batch_sizes.items():
        # The same MLP each time; a fresh scope reseeds, so all three start from the
        # same initial weights (their fingerprint is in the report).
        with run.scope():
            network = keras.Sequential(
                [keras.layers.Dense(units, activation="relu") for units in config.hidden]
                + [keras.layers.Dense(1, activation="sigmoid")],
                name="gradient_descent")
            model = data.with_preprocessing(network)
            model.compile(optimizer=run.optimizer(), loss="binary_crossentropy",
                          metrics=["accuracy"])
        initial = fingerprint(*model.get_weights())
        history = run.fit(model, data.x_train, data.y_train, epochs=config.epochs,
                          batch_size=batch_size, validation_data=(data.x_val, data.y_val),
                          variant=variant)
        models[variant], histories[variant] = model, history

        # What the notes assert about each kind, measured.
        logs = history.history
        tracing, per_epoch, clock = optimization.timing(logs["epoch_seconds"])
        variants[variant] = {
            "batch_size": n_train if batch_size == "full" else min(batch_size, n_train),
            "steps_per_epoch": history.steps_per_epoch,
            "seconds": clock[-1],
            "seconds_per_epoch": per_epoch,
            "tracing_seconds": tracing,
            "final_loss": logs["loss"][-1],
            "test_metric": run.evaluate(model, data)["accuracy"],
            "initial_weights_sha256": initial,
        }
        curves[variant] = {"loss": logs["loss"], "seconds": clock}

    epochs = len(histories["mini-batch"].history["loss"])
    rows = [[variant, v["batch_size"], v["steps_per_epoch"], v["steps_per_epoch"] * epochs,
             v["seconds"], v["seconds_per_epoch"], v["tracing_seconds"], v["final_loss"],
             v["test_metric"]] for variant, v in variants.items()]

    # The notes' one-weight walk, W_new = W_old − η·∂C/∂w, by hand and by Keras's SGD.
    settings = dict(WALK)
    split, names = data.split, data.feature_names
    if data.encoding is not None:  # a table with text or gaps: walk on one encoded column
        split, names = data.encoded_split, [f"encoded {i}" for i in range(data.n_features)]
    if settings["feature"] not in names:
        settings["feature"] = names[0]
    walk = optimization.walk(split, names, seed=config.seed, **settings)
    walk_diff = max(abs(s["new_weight"] - s["keras_new_weight"]) for s in walk)
    eta = settings["learning_rate"]
    walk_rows = [[s["step"], s["weight"], s["loss"], s["gradient"], eta * s["gradient"],
                  s["new_weight"], s["keras_new_weight"]] for s in walk]

    figure = plots.loss_by_epoch_and_time(
        curves, f"gradient-descent: {epochs} epochs, {config.optimizer}, "
                f"learning rate {config.learning_rate:g} ({data.dataset.name})")
    # The mini-batch model is the one exported.
    return run.finish(
        models["mini-batch"], data, histories["mini-batch"],
        details={**variants, "walk": walk, "walk_max_abs_diff": walk_diff,
                 "walk_settings": settings},
        tables=[
            Table(f"Full batch vs stochastic vs mini-batch ({n_train} training rows, same "
                  f"initial weights, {epochs} epochs)",
                  ["variant", "batch size", "steps/epoch", "steps", "seconds", "s/epoch",
                   "tracing s", "final loss", "test accuracy"], rows),
            Table(f"The notes' walk, done for real: σ(w·x) on standardized "
                  f"'{settings['feature']}', log loss, η = {eta:g}",
                  ["step", "W_old", "C(W_old)", "dC/dw", "η·dC/dw", "W_new = W_old − η·dC/dw",
                   "W_new (Keras SGD)"], walk_rows),
        ],
        figures={"loss_curves.png": figure},
        messages=[
            "Same MLP, same initial weights, same epochs: only the rows per step differ. "
            "The exported model is the mini-batch one.",
            f"Walk: hand-computed and Keras SGD weights agree to {walk_diff:.1e} "
            "(float64 by hand, float32 in Keras).",
        ],
    )
