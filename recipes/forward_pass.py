"""The notes' multi-layer perceptron, neuron by neuron: z and f(z) of every unit, by hand = Keras.

Notes: "Multi-layer Perceptron" (input features = 3, hidden layers = 2 with 4
nodes each, 3 target classes; "both z and f(z) calculated at each of these
neurons") and "Working of a neuron". The notes' numbers are drawn, not
computed, so there is no ERRATA entry here.

Each neuron forms z = w·a + b from the previous layer's outputs a (the input
row for the first layer) and passes on f(z). A layer of neurons is one matrix
product: z = a·W + b, with W of shape [inputs, units], which is exactly what a
Keras `Dense` layer holds in its kernel. This recipe builds the notes'
network as a `keras.Sequential` that keeps the two halves of each neuron
apart, so both can be read off its layers: a linear `Dense` (z) then an
`Activation` (f(z)); sigmoid in the hidden layers, as in the notes' worked
neuron, and softmax over the three classes. A Keras model whose outputs are
every layer's output (`keras.Model(network.inputs, [layer.output ...])`)
reads z and f(z) of all 4 + 4 + 3 neurons.

First, with the seeded initial weights (Glorot-uniform kernels, zero biases),
the worked neuron's inputs (0.9, 0.2, 0.3) go through the network: by hand in
NumPy (`models.lessons.forward`: z = a·W + b and f(z), layer by layer, from the
kernels and biases read out of the model) and by Keras. They agree to 1e-6,
and the three softmax outputs sum to 1. Then the same network, behind the
library's `Normalization` front-end, is trained on Fisher's iris with three of
its measurements (sepal length, petal length, petal width: the notes' three
input features), and the first test flower goes through the trained network
the same two ways (by hand, the normalization too: (x − mean) / std of the
training rows).

What to look at: the two tables (every neuron's z and f(z), Keras and by
hand), `forward_pass.png` (the network as the notes draw it, each neuron's z
and f(z) beside it) and the test accuracy. `details`: `layers` (one entry per layer:
`name`, `units`, `activation`, `z` and `a` as Keras computes them, and
`by_hand` with the same), `max_abs_diff` (the largest |Keras − by hand| over
them), `softmax_sum`, `inputs`, and `trained` (the test flower's `features`,
`layers`, `max_abs_diff`, `softmax_sum`, `predicted`, `label`).
"""

from recipes.core.options import TRAINING
from recipes.core.registry import register

NOTES_ROW = (0.9, 0.2, 0.3)
"""The worked neuron's inputs X1, X2, X3: the row sent through the untrained network."""

FEATURES = ("sepal length (cm)", "petal length (cm)", "petal width (cm)")
"""The three iris measurements the network is trained on (sepal width left out)."""

OPTIONS = tuple(o for o in TRAINING if o not in ("data", "target", "drop", "l2", "dropout"))
"""No `--data`: the lesson is the notes' 3-input network; no regularizers between z and f(z)."""


def _layer_values(network, outputs, by_hand):
    """One entry per neuron layer: Keras's z and f(z) (from `outputs`) and the same by hand."""
    import numpy as np

    layers = []
    for i in range(0, len(network.layers), 2):
        dense, activation = network.layers[i], network.layers[i + 1]
        hand = by_hand[i // 2]
        layers.append({
            "name": dense.name.removesuffix("_z"), "units": dense.units,
            "activation": activation.activation.__name__,
            "z": np.asarray(outputs[i]).reshape(-1).tolist(),
            "a": np.asarray(outputs[i + 1]).reshape(-1).tolist(),
            "by_hand": {"z": hand["z"].tolist(), "a": hand["a"].tolist()},
        })
    return layers


def _max_diff(layers):
    import numpy as np

    return max(float(np.max(np.abs(np.subtract(layer[k], layer["by_hand"][k]))))
               for layer in layers for k in ("z", "a"))


def _neuron_table(title, layers):
    from recipes.core.report import Table

    rows = [[layer["name"], j + 1, layer["activation"], layer["z"][j], layer["by_hand"]["z"][j],
             layer["a"][j], layer["by_hand"]["a"][j]]
            for layer in layers for j in range(layer["units"])]
    return Table(title, ["layer", "neuron", "f", "z (Keras)", "z (by hand)", "f(z) (Keras)",
                         "f(z) (by hand)"], rows)


@register(
    "forward-pass",
    scenario="The notes' 3-4-4-3 MLP: z and f(z) of every neuron, by hand = Keras",
    data="iris (scikit-learn), 3 of its 4 measurements",
    summary="One row through the notes' network, layer by layer, in NumPy and from the "
            "Keras model's layers; then the network trained.",
    options=OPTIONS,
    defaults={"epochs": 200, "batch_size": 16, "hidden": (4, 4), "learning_rate": 0.01},
)
def forward_pass(run):
    import keras
    import numpy as np

    from models.lessons.forward import forward, full_float32
    from recipes.core import plots

    config = run.config

    # Data: iris, three measurements (the notes' three input features), 3 species.
    data = run.load_data("iris", task="multiclass", features=FEATURES)

    # Model: each neuron's two halves as two layers, z = a·W + b (Dense) then f(z).
    with run.scope():
        layers = [keras.Input((data.n_features,), name="x")]
        for i, units in enumerate(config.hidden, start=1):
            layers += [keras.layers.Dense(units, name=f"hidden_{i}_z"),
                       keras.layers.Activation("sigmoid", name=f"hidden_{i}_a")]
        layers += [keras.layers.Dense(data.n_classes, name="output_z"),
                   keras.layers.Activation("softmax", name="output_a")]
        network = keras.Sequential(layers, name="forward_pass")
        model = data.with_preprocessing(network)
        model.compile(optimizer=run.optimizer(), loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])
    # Every layer's output, z and f(z) of each neuron, from one Keras call.
    every_layer = keras.Model(network.inputs, [layer.output for layer in network.layers])

    def by_hand(x):
        """The same pass in NumPy, from the kernels and biases the Keras layers hold."""
        return forward(x, [(dense.kernel.numpy(), dense.bias.numpy(),
                            network.layers[i + 1].activation.__name__)
                           for i, dense in enumerate(network.layers) if i % 2 == 0])

    # 1. The worked neuron's inputs through the seeded, untrained network.
    # (Keras's side at full float32 precision: a GPU's TensorFloat-32 matmuls are ~1e-3.)
    row = np.array([NOTES_ROW], dtype=np.float32)
    with full_float32():
        initial = _layer_values(network, every_layer([row]), by_hand(row))

    # 2. Train the same network (behind the Normalization front-end) on the iris rows.
    history = run.fit(model, data.x_train, data.y_train, epochs=config.epochs,
                      batch_size=config.batch_size, validation_data=(data.x_val, data.y_val))

    # 3. The first test flower through the trained network; by hand, the normalization too.
    flower = data.x_test[:1]
    mean = data.x_train.astype(np.float64).mean(axis=0)
    std = data.x_train.astype(np.float64).std(axis=0)
    with full_float32():
        normalized = model.get_layer("normalization")(flower)
        trained = _layer_values(network, every_layer([normalized]), by_hand((flower - mean) / std))
    probabilities = np.asarray(trained[-1]["a"])

    max_abs_diff = _max_diff(initial)
    softmax_sum = float(np.sum(initial[-1]["a"], dtype=np.float64))
    predicted = data.class_names[int(np.argmax(probabilities))]
    label = data.class_names[int(data.split.y_test[0])]
    shape = " -> ".join([str(data.n_features),
                         *(f"{layer['units']} {layer['activation']}" for layer in initial)])
    return run.finish(
        model, data, history,
        details={
            "inputs": list(NOTES_ROW),
            "layers": initial,
            "max_abs_diff": max_abs_diff,
            "softmax_sum": softmax_sum,
            "trained": {"features": dict(zip(FEATURES, map(float, flower[0]))),
                        "layers": trained, "max_abs_diff": _max_diff(trained),
                        "softmax_sum": float(probabilities.sum()),
                        "predicted": predicted, "label": label},
        },
        tables=[
            _neuron_table(f"x = {NOTES_ROW} through the seeded, untrained {shape} network",
                          initial),
            _neuron_table(f"The first test flower ({label}) through the trained network: "
                          f"predicted {predicted}", trained),
        ],
        figures={"forward_pass.png": plots.network_values(
            NOTES_ROW, initial, f"forward-pass: x = {NOTES_ROW} through the seeded {shape} "
            "network (Keras's values; by hand the same)")},
        messages=[
            f"By hand (NumPy, z = a·W + b then f(z)) = Keras (every layer's output): largest "
            f"difference {max_abs_diff:.1e} (trained network: {_max_diff(trained):.1e}, its z "
            f"larger, float32's rounding with them); the softmax outputs sum to "
            f"{softmax_sum:.7f}.",
        ],
    )
