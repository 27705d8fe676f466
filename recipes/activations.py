"""Sigmoid, tanh, softmax, ReLU and Leaky ReLU: values, derivatives, and one model with each.

Notes: "Activation functions" (sigmoid, hyperbolic tangent, softmax, ReLU,
Leaky ReLU) and "Derivatives", with their worked numbers (σ' peaks at 0.25 at
z = 0; softmax outputs lie in (0, 1) and sum to 1); ERRATA #6, #7, #9 and #14.

An activation turns a neuron's sum z into its output, and its derivative
decides how much gradient flows back through the neuron in training. This
recipe evaluates Keras's own activations (`keras.activations.*`) on 1201
points from z = -6 to 6, differentiates them with `tf.GradientTape`, and
checks every derivative against its closed form: σ' = σ(1 - σ) peaks at 0.25
(at z = 0), tanh' = 1 - tanh² at 1, ReLU' is 0 or 1, Leaky ReLU' is α or 1, and
softmax (of the rows (z, 0, -z)) gives rows that sum to 1 with a Jacobian
diag(s) - s sᵀ whose diagonal s_i(1 - s_i) also peaks at 0.25. Then it trains
the same MLP on the handwritten digits once per hidden activation (sigmoid,
tanh, relu, leaky_relu), from the same initial weights, and tests each.

Where the notes slip, the report shows the true number:
- ERRATA #6: the notes' table gives tanh, "range (-1, 0, 1)", as the output for
  three classes. tanh is a hidden-layer activation; three or more classes take
  a softmax output, one unit per class, whose outputs lie in (0, 1) and sum to
  1 (`details.functions.softmax.min`, `.max`, `.max_row_sum_error`), as the
  ten-digit MLPs below do.
- ERRATA #7: the notes give Leaky ReLU's range as "(-a·n, n) where α is
  less than 0". α is a small positive constant, 0 < α < 1: Keras's default is
  0.2, so on [-6, 6] Leaky ReLU runs from -1.2 to 6 (`details.functions.
  leaky_relu.alpha`, `.min`).
- ERRATA #9: the notes write tanh(z) = (e^2x - 1)/(e^2x + 1), mixing z
  and x. With one variable, (e^2z - 1)/(e^2z + 1) equals Keras's tanh to
  float32 precision (`details.functions.tanh.notes_formula_max_error`).
- ERRATA #14: "ReLU is immune to the vanishing gradient problem" is half
  true. ReLU' is 1 for z > 0, so it does not shrink gradients layer by layer,
  but it is 0 for z <= 0: a unit whose z stays negative passes back nothing (a
  dead unit). Leaky ReLU' is never 0 (`derivative_values`; the
  `vanishing-gradient` recipe counts dead units in a deep net).

What to look at: the checks table (every |tape - closed form| below 1e-6),
`activations.png` (each function and its derivative), and the training table
and `training.png`: on this shallow net all four activations learn the digits
well; sigmoid starts slowest, its small slopes showing in the first epochs.
The report's `details` hold `functions.{sigmoid,tanh,relu,leaky_relu,softmax}.
max_derivative` (softmax: of its diagonal Jacobian entries) and
`training.{sigmoid,tanh,relu,leaky_relu}.test_accuracy`.
"""

from recipes.core.registry import register

SHOWN_AT = (-4.0, -2.0, -1.0, 0.0, 1.0, 2.0, 4.0)
"""The points of z printed in the values table."""


@register(
    "activations",
    scenario="Activation functions: values, derivatives, one model trained with each",
    data="handwritten digits (scikit-learn)",
    summary="Sigmoid, tanh, softmax, ReLU, Leaky ReLU by GradientTape; an MLP with each.",
    options=("epochs", "batch_size", "hidden", "optimizer", "learning_rate", "device"),
    defaults={"epochs": 10, "batch_size": 32, "hidden": (32, 32), "optimizer": "adam",
              "learning_rate": 0.01},
)
def activations(run):
    import keras
    import numpy as np

    from models.lessons import activations as lesson
    from models.training import loop
    from recipes.core import plots
    from recipes.core.report import Table

    config = run.config

    # The functions and their derivatives on a grid of z, by GradientTape.
    z = lesson.grid()
    functions = {name: lesson.elementwise(name, z) for name in lesson.ACTIVATIONS}
    functions["softmax"] = lesson.softmax_rows(z)

    # One MLP on the digits per hidden activation. Each is built in a fresh
    # `run.scope()`, which seeds Keras, so all four start from the same kernels:
    # only the activation differs.
    data = run.load_data("digits", task="multiclass")
    if config.verbose:
        print(f"Training {len(lesson.ACTIVATIONS)} MLPs on the digits, hidden "
              f"{','.join(map(str, config.hidden))}, {config.epochs} epochs each:", flush=True)
    histories, tests = {}, {}
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
        history = run.fit(model, data.x_train, data.y_train, epochs=config.epochs,
                          batch_size=config.batch_size, validation_data=(data.x_val, data.y_val),
                          variant=activation)
        histories[activation] = history
        # The test split's loss and accuracy, as model.evaluate gives them (one batch).
        tests[activation] = loop.evaluate(model, data.x_test, data.y_test)

    # The report: the checks, the values, the training side by side.
    def slopes(name):
        return "{" + ", ".join(map(str, functions[name]["derivative_values"])) + "}"

    notes = {
        "sigmoid": "σ' = σ(1 - σ), peak 0.25 at z = 0",
        "tanh": "tanh' = 1 - tanh²; (e^2z - 1)/(e^2z + 1) within "
                f"{functions['tanh']['notes_formula_max_error']:.0e} (ERRATA #9)",
        "relu": f"f' in {slopes('relu')}: dead for z <= 0 (ERRATA #14)",
        "leaky_relu": f"f' in {slopes('leaky_relu')}, α = {lesson.LEAKY_SLOPE} > 0 (ERRATA #7)",
        "softmax": "rows (z, 0, -z) sum to 1 within "
                   f"{functions['softmax']['max_row_sum_error']:.0e}; f' = ∂s_i/∂z_i",
    }
    checks = Table(
        f"Keras activations on z in [{z[0]:g}, {z[-1]:g}] ({len(z)} points), derivatives by "
        "GradientTape against the closed forms",
        ["function", "min f(z)", "max f(z)", "max f'(z)", "at z", "|tape - closed form|", "note"],
        [[name, f["min"], f["max"], f["max_derivative"],
          f["argmax_z"],
          f"{f['max_error']:.1e}", notes[name]] for name, f in functions.items()],
    )
    at = [int(np.argmin(np.abs(z - v))) for v in SHOWN_AT]
    values = Table(
        "Values and derivatives (softmax: first output of (z, 0, -z))",
        ["z", "σ", "σ'", "tanh", "tanh'", "relu", "relu'", "leaky", "leaky'", "softmax₁",
         "∂s₁/∂z₁"],
        [[float(z[i]),
          *[float(v) for name in lesson.ACTIVATIONS
            for v in (functions[name]["values"][i], functions[name]["derivatives"][i])],
          float(functions["softmax"]["values"][i, 0]),
          float(functions["softmax"]["diagonal"][i, 0])] for i in at],
    )
    figure = plots.function_panels(
        {
            **{name: {"x": z, "curves": {f"{name}(z)": functions[name]["values"],
                                         f"{name}'(z)": functions[name]["derivatives"]},
                      "points": [(functions[name]["argmax_z"], functions[name]["max_derivative"],
                                  f"max {functions[name]['max_derivative']:.4g}")]}
               for name in lesson.ACTIVATIONS},
            "softmax of (z, 0, -z)": {
                "x": z,
                "curves": {**{f"s{i + 1}": functions["softmax"]["values"][:, i] for i in range(3)},
                           "∂s1/∂z1": functions["softmax"]["diagonal"][:, 0]}},
        },
        "Keras activations and their derivatives by GradientTape",
    )
    logs = {name: history.history for name, history in histories.items()}
    trained = Table(
        f"The same MLP ({data.n_features} -> {' -> '.join(map(str, config.hidden))} -> "
        f"{data.n_classes} softmax) with each hidden activation, same initial weights",
        ["hidden activation", "loss, epoch 1", "final loss", "val accuracy", "test accuracy",
         "test loss", "seconds"],
        [[name, log["loss"][0], log["loss"][-1], log["val_accuracy"][-1],
          tests[name]["accuracy"], tests[name]["loss"], sum(log["epoch_seconds"])]
         for name, log in logs.items()],
    )
    curves = plots.curves({name: log["loss"] for name, log in logs.items()},
                          "activations: training loss by hidden activation", "epoch",
                          "training loss")
    details = {
        "functions": {
            name: {k: v for k, v in f.items() if k not in ("values", "derivatives", "diagonal")}
            for name, f in functions.items()
        },
        "grid": {"low": float(z[0]), "high": float(z[-1]), "points": len(z)},
        "training": {
            name: {"test_accuracy": tests[name]["accuracy"], "test_loss": tests[name]["loss"],
                   "final_loss": log["loss"][-1], "loss": log["loss"],
                   "val_loss": log["val_loss"], "val_accuracy": log["val_accuracy"],
                   "seconds": sum(log["epoch_seconds"])}
            for name, log in logs.items()
        },
        "dataset": data.dataset.name,
        "hidden": list(config.hidden),
        "device": run.device,
    }
    return run.result(
        details=details,
        tables=[checks, values, trained],
        figures={"activations.png": figure, "training.png": curves},
        messages=[f"Training: {config.optimizer}, learning rate {config.learning_rate:g}, "
                  f"batch {config.batch_size}, {config.epochs} epochs per model"],
        data=data,
    )
