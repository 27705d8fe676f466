"""The math of the neuron and activation lessons: derivatives, gradient norms, slopes.

Used by `single-neuron`, `activations` and `vanishing-gradient`, which build and
train their models themselves (the variant loop is in the recipe). Everything here
differentiates with `tf.GradientTape` against Keras's own activations
(`keras.activations.*`), so the numbers are what Keras trains with, and checks
them against the closed forms of the notes:

| function   | f(z)                         | f'(z)                          |
|------------|------------------------------|--------------------------------|
| sigmoid    | 1 / (1 + e^-z)               | σ(z)(1 - σ(z)), at most 0.25   |
| tanh       | (e^2z - 1) / (e^2z + 1)      | 1 - tanh(z)², at most 1        |
| relu       | max(0, z)                    | 0 (z <= 0) or 1 (z > 0)        |
| leaky_relu | z, or α·z for z < 0 (α=0.2)  | α (z <= 0) or 1 (z > 0)        |
| softmax    | e^z_i / Σ_j e^z_j            | ∂s_i/∂z_j = s_i(δ_ij - s_j)    |

At z = 0 ReLU has no derivative; TensorFlow uses 0 there (and α for Leaky ReLU).

This module imports TensorFlow: import it inside a recipe's function. It imports
nothing of the package: it measures any Keras model handed to it.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

ACTIVATIONS = ("sigmoid", "tanh", "relu", "leaky_relu")
"""The hidden-layer activations the lessons compare."""

LEAKY_SLOPE = 0.2
"""α of `keras.activations.leaky_relu` (its `negative_slope` default), 0 < α < 1."""


def grid(low=-6.0, high=6.0, per_unit=100):
    """Points z from `low` to `high`, `per_unit` per unit of z, with z = 0 exactly among them."""
    return np.arange(round(low * per_unit), round(high * per_unit) + 1) / per_unit


def derivative(fn, z):
    """Values and elementwise derivative of `fn` at `z`, by `tf.GradientTape`.

    Args:
        fn: an elementwise function of a tensor, e.g. `keras.activations.sigmoid`.
        z: the points, any shape.

    Returns:
        `(values, derivatives)`, float32 NumPy arrays shaped like `z`.

    Example:

    >>> import keras
    >>> values, slopes = derivative(keras.activations.sigmoid, [0.0])
    >>> float(values[0]), float(slopes[0])
    (0.5, 0.25)
    """
    z = tf.convert_to_tensor(np.asarray(z, dtype=np.float32))
    with tf.GradientTape() as tape:
        tape.watch(z)
        values = fn(z)
    return np.asarray(values), np.asarray(tape.gradient(values, z))


def sigmoid(z):
    """σ(z) = 1 / (1 + e^-z) in float64, by hand."""
    return 1.0 / (1.0 + np.exp(-np.asarray(z, dtype=np.float64)))


CLOSED_FORMS = {
    "sigmoid": lambda z: sigmoid(z) * (1.0 - sigmoid(z)),
    "tanh": lambda z: 1.0 - np.tanh(z) ** 2,
    "relu": lambda z: np.where(z > 0, 1.0, 0.0),
    "leaky_relu": lambda z: np.where(z > 0, 1.0, LEAKY_SLOPE),
}
"""Each elementwise activation's derivative in closed form (TensorFlow's choice at z = 0)."""

KERAS = {
    "sigmoid": keras.activations.sigmoid,
    "tanh": keras.activations.tanh,
    "relu": keras.activations.relu,
    "leaky_relu": keras.activations.leaky_relu,
}
"""The Keras functions behind the activation names `Dense(activation=...)` takes."""


def elementwise(name, z):
    """One activation on the points `z`: values, GradientTape derivatives, closed form.

    Returns:
        A dict: `values`, `derivatives` (arrays), and the numbers of the lesson:
        `min`, `max` (values), `max_derivative` and the `argmax_z` where it is
        reached, `max_error` (largest |tape - closed form|), and for ReLU and
        Leaky ReLU the distinct `derivative_values`.
    """
    values, slopes = derivative(KERAS[name], z)
    summary = {
        "min": float(values.min()),
        "max": float(values.max()),
        "max_derivative": float(slopes.max()),
        "argmax_z": float(z[int(slopes.argmax())]),
        "max_error": float(np.abs(slopes - CLOSED_FORMS[name](z)).max()),
    }
    if name in ("relu", "leaky_relu"):
        summary["derivative_values"] = sorted({float(f"{v:.7g}") for v in np.unique(slopes)})
        summary["derivative_at_0"] = float(slopes[int(np.argmin(np.abs(z)))])
    if name == "leaky_relu":
        summary["alpha"] = LEAKY_SLOPE
    if name == "tanh":
        e2z = np.exp(2.0 * np.asarray(z, dtype=np.float64))
        summary["notes_formula_max_error"] = float(np.abs(values - (e2z - 1.0) / (e2z + 1.0)).max())
    return {"values": values, "derivatives": slopes, **summary}


def softmax_rows(z):
    """Softmax of the rows (z, 0, -z): values, Jacobian by GradientTape, and checks.

    Returns:
        A dict: `values` `[rows, 3]`, `diagonal` (∂s_i/∂z_i) `[rows, 3]`, and
        `min`, `max`, `max_row_sum_error` (largest |Σ_i s_i - 1|),
        `max_derivative` (of the diagonal entries) and the `argmax_z` where it
        is reached, `max_error` (largest
        |tape - (diag(s) - s sᵀ)|), `two_class_vs_sigmoid_max_error` (softmax
        of (z, 0) against σ(z): two-class softmax is the sigmoid).
    """
    z = np.asarray(z, dtype=np.float32)
    logits = tf.convert_to_tensor(np.stack([z, np.zeros_like(z), -z], axis=1))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(logits)
        values = keras.activations.softmax(logits)
        outputs = [tf.reduce_sum(values[:, i]) for i in range(3)]
    # Row r of the batch only feeds output row r, so the gradient of output i summed over
    # the rows is ∂s_i/∂z_j for every row: three gradients give the Jacobian (`batch_jacobian`
    # gives the same numbers, but vectorizes through a traced function: 0.3 s more here).
    jacobian = np.stack([np.asarray(tape.gradient(output, logits)) for output in outputs], axis=1)
    del tape
    values = np.asarray(values)
    closed = np.einsum("ri,ij->rij", values, np.eye(3)) - np.einsum("ri,rj->rij", values, values)
    diagonal = np.einsum("rii->ri", jacobian)
    pair = np.asarray(keras.activations.softmax(tf.stack([z, np.zeros_like(z)], axis=1)))[:, 0]
    return {
        "values": values,
        "diagonal": diagonal,
        "min": float(values.min()),
        "max": float(values.max()),
        "max_row_sum_error": float(np.abs(values.sum(axis=1, dtype=np.float64) - 1.0).max()),
        "max_derivative": float(diagonal.max()),
        "argmax_z": float(z[int(diagonal.max(axis=1).argmax())]),
        "max_error": float(np.abs(jacobian - closed).max()),
        "two_class_vs_sigmoid_max_error": float(np.abs(pair - sigmoid(z)).max()),
    }


def dense_layers(model):
    """Every `Dense` layer of `model`, nested models (a wrapped `Sequential`) included, in order."""
    found = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.Dense):
            found.append(layer)
        elif hasattr(layer, "layers"):
            found += dense_layers(layer)
    return found


def hidden_layers(model):
    """The hidden `Dense` layers of an MLP, first to last: every `Dense` layer but the output.

    Example:

    >>> import keras
    >>> network = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="a"),
    ...                             keras.layers.Dense(2, name="b"), keras.layers.Dense(1)])
    >>> [layer.name for layer in hidden_layers(network)]
    ['a', 'b']
    """
    return dense_layers(model)[:-1]


def kernel_gradient_norms(model, x, y, loss):
    """‖∂L/∂W‖ (Frobenius) of each hidden layer's kernel, on one batch, first layer first.

    Args:
        model: an MLP (raw features in; see `hidden_layers`).
        x: the batch's features.
        y: its targets.
        loss: a Keras loss name, e.g. `"sparse_categorical_crossentropy"`.
    """
    loss_fn = keras.losses.get(loss)
    x = tf.convert_to_tensor(np.asarray(x, dtype=np.float32))
    y = tf.convert_to_tensor(np.asarray(y))
    kernels = [layer.kernel for layer in hidden_layers(model)]
    with tf.GradientTape() as tape:
        value = tf.reduce_mean(loss_fn(y, model(x, training=True)))
    return [float(tf.norm(g)) for g in tape.gradient(value, kernels)]


def activation_slopes(model, x):
    """f'(z) of every hidden unit on every row of `x`, one `[rows, units]` array per layer.

    `model` takes raw features through its layer named `normalization` (the
    front-end of `models.data.prepared.PreparedData.with_preprocessing`), then
    its hidden `Dense` layers.
    """
    h = model.get_layer("normalization")(np.asarray(x, dtype=np.float32))
    slopes = []
    for layer in hidden_layers(model):
        z = keras.ops.matmul(h, layer.kernel) + layer.bias
        h, slope = derivative(layer.activation, z)
        slopes.append(slope)
    return slopes


def slope_summary(model, x):
    """What the hidden units pass back on `x`: the ERRATA #14 numbers.

    Returns:
        `mean_derivative` (mean f'(z) per layer, first layer first),
        `zero_derivative_share` (share of unit-row pairs whose f'(z) is 0: no
        gradient flows back through them), `dead_units` (units with f'(z) = 0
        on every row: a dead ReLU).
    """
    slopes = activation_slopes(model, x)
    every = np.concatenate([s.reshape(-1) for s in slopes])
    return {
        "mean_derivative": [float(s.mean()) for s in slopes],
        "zero_derivative_share": float(np.mean(every == 0)),
        "dead_units": int(sum(np.all(s == 0, axis=0).sum() for s in slopes)),
    }
