"""The forward pass of a multi-layer perceptron by hand: z = a·W + b, then f(z), layer by layer.

Used by `forward-pass`, which sets these numbers beside what its Keras model's
layers output (computed inside `full_float32()`). `forward` is NumPy only, in
float64: each layer takes the previous layer's activations `a` (the input row
for the first), forms every neuron's weighted sum z = a·W + b (W: `[inputs,
units]`, as Keras's `Dense` kernel) and applies the activation f elementwise,
or across the layer for softmax. TensorFlow is imported only inside
`full_float32`.

Example:

>>> import numpy as np
>>> W = np.array([[2.0], [3.0], [-1.0]]); b = np.array([0.5])
>>> [layer] = forward([0.9, 0.2, 0.3], [(W, b, "sigmoid")])
>>> round(float(layer["z"][0]), 6), round(float(layer["a"][0]), 4)
(2.6, 0.9309)
"""

from __future__ import annotations

import contextlib

import numpy as np


def _softmax(z):
    e = np.exp(z - np.max(z))
    return e / e.sum()


ACTIVATIONS = {
    "linear": lambda z: z,
    "sigmoid": lambda z: 1.0 / (1.0 + np.exp(-z)),
    "tanh": np.tanh,
    "relu": lambda z: np.maximum(z, 0.0),
    "softmax": _softmax,
}
"""f(z) by hand for the activations the lesson's network may use (softmax: e^z_i / Σ_j e^z_j)."""


def forward(x, layers):
    """One row through the layers; returns `[{"z": array, "a": array}, ...]`, first layer first.

    Args:
        x: the input row, one value per feature.
        layers: `[(kernel [inputs, units], bias [units], activation name), ...]`
            (an activation of `ACTIVATIONS`).

    Raises:
        ValueError: an activation this module has no formula for.
    """
    a = np.asarray(x, dtype=np.float64).reshape(-1)
    out = []
    for kernel, bias, activation in layers:
        if activation not in ACTIVATIONS:
            raise ValueError(f"`activation` must be one of {', '.join(ACTIVATIONS)}. "
                             f"Received: activation={activation!r}")
        z = a @ np.asarray(kernel, dtype=np.float64) + np.asarray(bias, dtype=np.float64)
        a = ACTIVATIONS[activation](z)
        out.append({"z": z, "a": a})
    return out


@contextlib.contextmanager
def full_float32():
    """Runs TensorFlow's float32 matrix products at full float32 precision inside.

    On GPUs with TensorFloat-32 (Ampere and later) TensorFlow rounds a float32
    matmul's inputs to 10 bits of mantissa by default, about 1e-3 relative: fine
    for training, too coarse for a by-hand comparison at 1e-6. The setting is
    process-wide; it is restored on exit. On a CPU it changes nothing.
    """
    import tensorflow as tf

    before = tf.config.experimental.tensor_float_32_execution_enabled()
    tf.config.experimental.enable_tensor_float_32_execution(False)
    try:
        yield
    finally:
        tf.config.experimental.enable_tensor_float_32_execution(before)
