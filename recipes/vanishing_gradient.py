"""The vanishing gradient: per-layer gradient norms of a deep sigmoid net against ReLU.

Notes: "Vanishing gradient problem" ("the partial derivative of the sigmoid
function reaches a maximum value of 0.25 ... when there are more layers in the
network, the value of the product of derivatives decreases"), and the
activation functions' "(not) immune to vanishing gradient"; NOTES-ERRATA #14.

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

NOTES-ERRATA #14: the notes call ReLU "immune" to the vanishing gradient. It
does not shrink gradients for z > 0 (slope 1), but its slope is 0 for z <= 0:
the summary table counts the share of unit-row pairs that pass back no
gradient at all (about half for ReLU, none for Leaky ReLU, whose slope there
is α = 0.2) and the dead units (slope 0 on every row of the batch): some ReLU
units are dead from the start, and training kills more. The report's `details`
hold `gradient_norms.{activation}` (first hidden layer first),
`first_to_last_ratio.{activation}` and `training.{activation}.final_loss`.
"""

from recipes.registry import register

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
def run(config):
    import time

    from recipes import _lessons, _plots
    from recipes._supervised import prepare
    from recipes.errors import UsageError
    from recipes.report import Result, Table

    if len(config.hidden) < 2:
        raise UsageError(
            "`--hidden` must name at least 2 hidden layers for vanishing-gradient (the lesson "
            "compares the first with the last). "
            f"Received: --hidden={','.join(map(str, config.hidden))}."
        )
    started = time.perf_counter()
    device = prepare(config)
    dataset, split = _lessons.load_split("digits", config.seed)
    depth = len(config.hidden)

    def at_init(model):
        return {
            "gradient_norms": _lessons.kernel_gradient_norms(
                model, split.x_train, split.y_train, "sparse_categorical_crossentropy"),
            "slopes": _lessons.slope_summary(model, split.x_train),
        }

    if config.verbose:
        print(f"Training 4 MLPs of {depth} hidden layers ({','.join(map(str, config.hidden))}) "
              f"on the digits, {config.epochs} epochs each:", flush=True)
    runs = _lessons.train_each(config, split, dataset, hidden=config.hidden, at_init=at_init,
                               say=print if config.verbose else None)
    norms = {name: r.initial["gradient_norms"] for name, r in runs.items()}
    ratios = {name: n[0] / n[-1] if n[-1] > 0 else float("nan") for name, n in norms.items()}
    slopes = {name: {"initial": r.initial["slopes"],
                     "trained": _lessons.slope_summary(r.model, split.x_train)}
              for name, r in runs.items()}
    bound = 0.25 ** (depth - 1)

    norm_table = Table(
        "‖∂L/∂W‖ of each hidden kernel at initialization (one batch: all "
        f"{len(split.y_train)} training rows; same initial weights)",
        ["hidden layer", *runs],
        [[i + 1, *(f"{norms[name][i]:.2e}" for name in runs)] for i in range(depth)]
        + [["first / last", *(f"{ratios[name]:.2e}" for name in runs)]],
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
          runs[name].history["loss"][-1], runs[name].test_accuracy] for name in runs],
    )
    layers = range(1, depth + 1)
    gradient_figure = _plots.curves(
        {name: (layers, n) for name, n in norms.items()},
        f"vanishing-gradient: ‖∂L/∂W‖ by hidden layer at initialization ({depth} layers)",
        "hidden layer (1 = next to the input)", "gradient norm (log scale)", logy=True,
    )
    training_figure = _plots.curves(
        {name: r.history["loss"] for name, r in runs.items()},
        f"vanishing-gradient: training loss, {depth} hidden layers", "epoch", "training loss",
    )
    details = {
        "gradient_norms": norms,
        "first_to_last_ratio": ratios,
        "sigmoid_factor_bound": bound,
        "derivatives": slopes,
        "training": {
            name: {"final_loss": r.history["loss"][-1], "loss": r.history["loss"],
                   "val_loss": r.history["val_loss"], "test_accuracy": r.test_accuracy,
                   "test_loss": r.test_loss, "seconds": r.seconds}
            for name, r in runs.items()
        },
        "batch_rows": len(split.y_train),
        "hidden": list(config.hidden),
        "dataset": dataset.name,
        "device": device,
    }
    slowest = max(runs, key=lambda name: runs[name].history["loss"][-1])
    return Result(
        recipe=config.recipe,
        details=details,
        timing={"train_seconds": sum(r.seconds for r in runs.values()),
                "total_seconds": time.perf_counter() - started},
        tables=[norm_table, summary],
        figures={"gradient_norms.png": gradient_figure, "training.png": training_figure},
        messages=[
            f"Data: {dataset.description} ({len(split.y_train)} train / {len(split.y_val)} "
            f"validation / {len(split.y_test)} test rows)",
            f"Model: {dataset.x.shape[1]} -> {' -> '.join(map(str, config.hidden))} -> "
            f"{dataset.n_classes} softmax; {config.optimizer}, learning rate "
            f"{config.learning_rate:g}, batch {config.batch_size}, {config.epochs} epochs",
            f"The notes' factor for sigmoid: σ' <= 0.25 over {depth - 1} layers gives "
            f"0.25^{depth - 1} = {bound:.1e}; measured first/last ratio: sigmoid "
            f"{ratios['sigmoid']:.1e}, relu {ratios['relu']:.1e}.",
            f"Highest final training loss (slowest learner): {slowest}.",
            f"Device: {device}",
        ],
    )
