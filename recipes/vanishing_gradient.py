"""The vanishing gradient: per-layer gradient norms of a deep sigmoid net against ReLU.

Notes: "Vanishing gradient problem" ("the partial derivative of the sigmoid
function reaches a maximum value of 0.25 ... when there are more layers in the
network, the value of the product of derivatives decreases"), and the
activation functions' "(not) immune to vanishing gradient"; ERRATA #14.

Backpropagation multiplies, layer by layer from the output back, the slope of
each layer's activation (and its weights). A sigmoid's slope is at most 0.25,
so in a deep sigmoid net the gradient reaching the first layers shrinks about
fourfold or more per layer: the notes' back-of-envelope factor over the nine
steps between the first and the last of ten hidden layers is 0.25⁹ ≈ 3.8e-6.
This recipe builds a deep plain MLP (ten hidden layers of 32 units by default)
four times, with sigmoid, tanh, relu and leaky_relu, all from the same initial
weights (Keras's default Glorot-uniform kernels), and measures ‖∂L/∂W‖ of each
hidden layer's kernel on the same batch (the whole training split of the
handwritten digits) before any training. Then it trains each briefly with the
same optimizer and compares the losses.

What to look at: the gradient-norm table and `gradient_norms.png` (log scale).
The sigmoid net's norms fall by orders of magnitude from the last hidden layer
to the first (its first-to-last ratio is 2.5e-6 with the default seed, the
size the notes' product of 0.25s predicts) while ReLU's, Leaky ReLU's and
tanh's stay within one order of magnitude (ratios near 1). In training
(`training.png`) the sigmoid net learns slowest: its first layers barely move,
and at the default ten epochs its loss is still near ln 10 ≈ 2.30, the loss of
guessing among ten digits. (Adam scales each weight's step by that weight's own
gradient size, which hides part of the effect; even so the sigmoid net stalls.)

ERRATA #14: the notes call ReLU "immune" to the vanishing gradient. It
does not shrink gradients for z > 0 (slope 1), but its slope is 0 for z <= 0:
the summary table counts the share of unit-row pairs that pass back no
gradient at all (about half for ReLU, none for Leaky ReLU, whose slope there
is α = 0.2) and the dead units (slope 0 on every row of the batch): some ReLU
units are dead from the start, and training kills more. The report's `details`
hold `gradient_norms.{activation}` (first hidden layer first),
`first_to_last_ratio.{activation}` and `training.{activation}.final_loss`.
With `--tensorboard DIR`, each activation's sub-folder also holds the norms as
curves: `gradient_norm/by_layer_at_init` (step = hidden layer) and
`gradient_norm/hidden_NN` after every epoch.
"""

from recipes.core.registry import register

DEPTH = 10
WIDTH = 32


@register(
    "vanishing-gradient",
    scenario="Vanishing gradient: per-layer gradient norms, sigmoid against ReLU",
    data="handwritten digits (scikit-learn)",
    summary=f"A {DEPTH}-hidden-layer MLP with sigmoid, tanh, relu, leaky_relu: gradient norms "
            "by layer, then training.",
    options=("epochs", "batch_size", "hidden", "optimizer", "learning_rate", "device"),
    defaults={"epochs": 10, "batch_size": 32, "hidden": (WIDTH,) * DEPTH, "optimizer": "adam",
              "learning_rate": 0.001},
)
def vanishing_gradient(run):
    import keras

    from models.lessons import activations as lesson
    from models.training import loop
    from recipes.core import plots
    from recipes.core.errors import UsageError
    from recipes.core.report import Table

    config = run.config
    if len(config.hidden) < 2:
        raise UsageError(
            "`--hidden` must name at least 2 hidden layers for vanishing-gradient (the lesson "
            "compares the first with the last). "
            f"Received: --hidden={','.join(map(str, config.hidden))}."
        )
    depth = len(config.hidden)
    data = run.load_data("digits", task="multiclass")
    if config.verbose:
        print(f"Training 4 MLPs of {depth} hidden layers ({','.join(map(str, config.hidden))}) "
              f"on the digits, {config.epochs} epochs each:", flush=True)

    # The same deep MLP once per hidden activation. Each is built in a fresh `run.scope()`,
    # which seeds Keras: all four start from the same Glorot-uniform kernels.
    norms, slopes, histories, tests = {}, {}, {}, {}
    for activation in lesson.ACTIVATIONS:
        with run.scope():
            network = keras.Sequential(
                [*(keras.layers.Dense(units, activation=activation) for units in config.hidden),
                 keras.layers.Dense(data.n_classes, activation="softmax")],
                name=f"{activation}_mlp",
            )
            model = data.with_preprocessing(network)
            model.compile(optimizer=run.optimizer(), loss="sparse_categorical_crossentropy",
                          metrics=["accuracy"])
        # Before training: ‖∂L/∂W‖ of each hidden kernel on one batch (every training row),
        # and the slopes f'(z) the hidden units pass back.
        norms[activation] = lesson.kernel_gradient_norms(
            model, data.x_train, data.y_train, "sparse_categorical_crossentropy")
        initial = lesson.slope_summary(model, data.x_train)
        # With --tensorboard: the norms by layer (step = layer), and each layer's norm per epoch.
        run.log_series("gradient_norm/by_layer_at_init", norms[activation], variant=activation)

        def layer_norms(model=model):
            measured = lesson.kernel_gradient_norms(
                model, data.x_train, data.y_train, "sparse_categorical_crossentropy")
            return {f"gradient_norm/hidden_{i:02d}": n for i, n in enumerate(measured, start=1)}

        histories[activation] = run.fit(
            model, data.x_train, data.y_train, epochs=config.epochs,
            batch_size=config.batch_size, validation_data=(data.x_val, data.y_val),
            variant=activation, epoch_scalars=layer_norms)
        slopes[activation] = {"initial": initial,
                              "trained": lesson.slope_summary(model, data.x_train)}
        # The test split's loss and accuracy, as model.evaluate gives them (one batch).
        tests[activation] = loop.evaluate(model, data.x_test, data.y_test)

    # The report.
    ratios = {name: n[0] / n[-1] if n[-1] > 0 else float("nan") for name, n in norms.items()}
    logs = {name: history.history for name, history in histories.items()}
    bound = 0.25 ** (depth - 1)
    norm_table = Table(
        "‖∂L/∂W‖ of each hidden kernel at initialization (one batch: all "
        f"{len(data.y_train)} training rows; same initial weights)",
        ["hidden layer", *norms],
        [[i + 1, *(f"{norms[name][i]:.2e}" for name in norms)] for i in range(depth)]
        + [["first / last", *(f"{ratios[name]:.2e}" for name in norms)]],
    )
    summary = Table(
        f"What each activation passes back at initialization (slopes f'(z) over all "
        f"{sum(config.hidden)} hidden units and training rows; dead units: "
        "initial -> trained), and how each net trains",
        ["activation", "first/last", "mean f'(z)", "f'(z) = 0 share", "dead units",
         "final loss", "test accuracy"],
        [[name, f"{ratios[name]:.2e}",
          sum(slopes[name]["initial"]["mean_derivative"]) / depth,
          slopes[name]["initial"]["zero_derivative_share"],
          f"{slopes[name]['initial']['dead_units']} -> {slopes[name]['trained']['dead_units']}",
          logs[name]["loss"][-1], tests[name]["accuracy"]] for name in norms],
    )
    layers = range(1, depth + 1)
    gradient_figure = plots.curves(
        {name: (layers, n) for name, n in norms.items()},
        f"vanishing-gradient: ‖∂L/∂W‖ by hidden layer at initialization ({depth} layers)",
        "hidden layer (1 = next to the input)", "gradient norm (log scale)", logy=True,
    )
    training_figure = plots.curves(
        {name: log["loss"] for name, log in logs.items()},
        f"vanishing-gradient: training loss, {depth} hidden layers", "epoch", "training loss",
    )
    details = {
        "gradient_norms": norms,
        "first_to_last_ratio": ratios,
        "sigmoid_factor_bound": bound,
        "derivatives": slopes,
        "training": {
            name: {"final_loss": log["loss"][-1], "loss": log["loss"],
                   "val_loss": log["val_loss"], "test_accuracy": tests[name]["accuracy"],
                   "test_loss": tests[name]["loss"], "seconds": sum(log["epoch_seconds"])}
            for name, log in logs.items()
        },
        "batch_rows": len(data.y_train),
        "hidden": list(config.hidden),
        "dataset": data.dataset.name,
        "device": run.device,
    }
    slowest = max(logs, key=lambda name: logs[name]["loss"][-1])
    return run.result(
        details=details,
        tables=[norm_table, summary],
        figures={"gradient_norms.png": gradient_figure, "training.png": training_figure},
        messages=[
            f"Model: {data.n_features} -> {' -> '.join(map(str, config.hidden))} -> "
            f"{data.n_classes} softmax; {config.optimizer}, learning rate "
            f"{config.learning_rate:g}, batch {config.batch_size}, {config.epochs} epochs",
            f"The notes' factor for sigmoid: σ' <= 0.25 over {depth - 1} layers gives "
            f"0.25^{depth - 1} = {bound:.1e}; measured first/last ratio: sigmoid "
            f"{ratios['sigmoid']:.1e}, relu {ratios['relu']:.1e}.",
            f"Highest final training loss (slowest learner): {slowest}.",
        ],
        data=data,
    )
