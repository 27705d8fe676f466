"""The notes' worked neuron: z = 2.6, σ(z) = 0.9309, as a Keras `Dense(1, sigmoid)`.

Notes: "Neural networks - working of a neuron" and "Derivatives" (the sigmoid's
derivative by the quotient rule). The notes' numbers hold here: no ERRATA entry.

A neuron weighs its inputs, adds a bias and squashes the sum:
z = w·x + b, then f(z) = σ(z) = 1 / (1 + e^-z). The notes feed it
x = (0.9, 0.2, 0.3) with weights w = (2, 3, -1) and bias b = 0.5:
z = 0.9·2 + 0.2·3 + 0.3·(-1) + 0.5 = 2.6 and σ(2.6) = 0.9309 (the notes round
it to 0.93). This recipe builds that neuron as a Keras `Dense(1,
activation="sigmoid")` layer holding exactly those weights, and computes the
same numbers by hand in plain Python, side by side. It trains nothing.

It then checks the notes' derivative, σ'(z) = σ(z)(1 - σ(z)): `tf.GradientTape`
differentiates Keras's sigmoid at z = 2.6 (0.0644) and the formula gives the
same number. The peak of σ' is 0.25, at z = 0; at z = 2.6 the neuron passes
back only about a quarter of that. Training uses these slopes: by the chain
rule the gradient of the output with respect to weight w_i is σ'(z)·x_i, which
the tape also reads off the Keras layer.

What to look at: the table (Keras against by hand: they agree to float32
precision) and `neuron.png`, σ and σ' with the neuron's point marked. The
report's `details` hold `z`, `output`, `derivative` (GradientTape) and
`derivative_formula` (σ(z)(1 - σ(z))); the tests keep them equal to the notes'
numbers.
"""

from recipes.core.registry import register

INPUTS = (0.9, 0.2, 0.3)
WEIGHTS = (2.0, 3.0, -1.0)
BIAS = 0.5


@register(
    "single-neuron",
    scenario="The notes' worked neuron: z = 2.6, σ(z) = 0.9309",
    data="none (the notes' inputs 0.9, 0.2, 0.3)",
    summary="A Keras Dense(1, sigmoid) with weights 2, 3, -1 and bias 0.5, by hand and by "
            "GradientTape.",
    options=(),
)
def single_neuron(run):
    import math

    import keras
    import numpy as np
    import tensorflow as tf

    from models.lessons import activations as lesson
    from recipes.core import plots
    from recipes.core.report import Table

    # The neuron: one Dense unit with the notes' weights (nothing is trained).
    with run.scope():
        layer = keras.layers.Dense(1, activation="sigmoid", name="neuron")
        layer.build((None, len(INPUTS)))
        layer.set_weights([np.array(WEIGHTS, dtype=np.float32).reshape(-1, 1),
                           np.array([BIAS], dtype=np.float32)])
    x = tf.constant([INPUTS], dtype=tf.float32)
    with tf.GradientTape() as tape:
        output = layer(x)
    weight_gradients = tape.gradient(output, layer.kernel)
    z = float(keras.ops.matmul(x, layer.kernel)[0, 0] + layer.bias[0])  # Dense's linear part
    output = float(output[0, 0])
    _, slope = lesson.derivative(keras.activations.sigmoid, [z])
    derivative = float(slope[0])
    derivative_formula = output * (1.0 - output)

    # The same by hand, in plain Python floats.
    z_hand = sum(xi * wi for xi, wi in zip(INPUTS, WEIGHTS)) + BIAS
    output_hand = 1.0 / (1.0 + math.exp(-z_hand))
    derivative_hand = output_hand * (1.0 - output_hand)
    weight_gradients = [float(g) for g in np.asarray(weight_gradients).reshape(-1)]
    weight_gradients_hand = [derivative_hand * xi for xi in INPUTS]
    _, peak = lesson.derivative(keras.activations.sigmoid, [0.0])

    rows = [
        ["z = w·x + b", z, z_hand, "2.6"],
        ["σ(z) = 1 / (1 + e^-z)", output, output_hand, "0.93"],
        ["σ'(z): GradientTape | σ(z)(1 - σ(z))", derivative, derivative_hand, ""],
        *[[f"∂σ/∂w{i + 1} = σ'(z)·x{i + 1}", g, h, ""]
          for i, (g, h) in enumerate(zip(weight_gradients, weight_gradients_hand))],
        ["σ'(0), the peak of σ'", float(peak[0]), 0.25, "0.25"],
    ]
    table = Table(
        "The worked neuron: x = (0.9, 0.2, 0.3), w = (2, 3, -1), b = 0.5",
        ["quantity", "Keras", "by hand / formula", "notes"], rows,
    )
    grid = lesson.grid()
    values, slopes = lesson.derivative(keras.activations.sigmoid, grid)
    figure = plots.function_panels(
        {"the neuron's sigmoid": {
            "x": grid, "curves": {"σ(z)": values, "σ'(z) (GradientTape)": slopes},
            "points": [(z, output, f"σ({z:.1f}) = {output:.4f}"),
                       (z, derivative, f"σ'({z:.1f}) = {derivative:.4f}"),
                       (0.0, float(peak[0]), "σ'(0) = 0.25")],
        }},
        "single-neuron: z = 0.9·2 + 0.2·3 + 0.3·(-1) + 0.5 = 2.6",
    )
    return run.result(
        details={
            "z": z,
            "output": output,
            "derivative": derivative,
            "derivative_formula": derivative_formula,
            "by_hand": {"z": z_hand, "output": output_hand, "derivative": derivative_hand},
            "inputs": list(INPUTS),
            "weights": list(WEIGHTS),
            "bias": BIAS,
            "weight_gradients": weight_gradients,
            "weight_gradients_by_hand": weight_gradients_hand,
            "max_derivative": float(peak[0]),
            "derivative_share_of_max": derivative / float(peak[0]),
            "device": run.device,
        },
        tables=[table],
        figures={"neuron.png": figure},
        messages=[
            "The notes' neuron as keras.layers.Dense(1, activation='sigmoid') with kernel "
            "(2, 3, -1) and bias 0.5, fed (0.9, 0.2, 0.3); nothing is trained.",
        ],
    )
