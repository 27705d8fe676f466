"""Keras `Sequential` multi-layer perceptrons, with the output head chosen by the target.

The notes' table of output activations, as corrected in NOTES-ERRATA #6-#8:

| target                      | head      | loss                              |
|-----------------------------|-----------|-----------------------------------|
| two classes                 | `sigmoid` | binary cross-entropy              |
| three or more classes       | `softmax` | sparse categorical cross-entropy  |
| continuous, positive        | `relu`    | mean squared error                |
| continuous, either sign     | `linear`  | mean squared error                |

(tanh is a hidden-layer activation, not a 3-class head; regression uses MSE,
not log loss.)

Every model starts with a `Normalization` layer adapted on the training rows,
so it takes raw feature values. A regression model ends with a `Rescaling`
layer holding the target's scale (and, for the `linear` head, its mean): the
layers before it learn a target of unit size, which keeps the step sizes of
every optimizer sensible, and the exported model still predicts in the
target's own units.

Example:

>>> import numpy as np
>>> from models import mlp
>>> x = np.random.default_rng(0).normal(size=(100, 3)).astype("float32")
>>> model = mlp.build(x, head="softmax", n_outputs=3, hidden=(4, 4))
>>> [layer.name for layer in model.layers]
['normalization', 'hidden_1', 'hidden_2', 'output']
"""

from __future__ import annotations

import numpy as np

HEADS = {
    "sigmoid": ("binary", "binary_crossentropy"),
    "softmax": ("multiclass", "sparse_categorical_crossentropy"),
    "relu": ("regression", "mean_squared_error"),
    "linear": ("regression", "mean_squared_error"),
}
"""Output head -> (task, Keras loss)."""

HIDDEN_ACTIVATIONS = ("sigmoid", "tanh", "relu", "leaky_relu", "elu", "linear")


def task_of(head):
    """The task an output head serves: `binary`, `multiclass` or `regression`."""
    return HEADS[head][0]


def _check(x_train, head, n_outputs, hidden, activation, l2, dropout, target_scale):
    if head not in HEADS:
        raise ValueError(f"`head` must be one of {', '.join(HEADS)}. Received: head={head!r}")
    if x_train.ndim != 2 or len(x_train) == 0:
        raise ValueError(
            "`x_train` must be a non-empty 2-D array [rows, features]. "
            f"Received: shape={x_train.shape}"
        )
    expected = {"sigmoid": 1, "relu": 1, "linear": 1}.get(head)
    if expected is not None and n_outputs != expected:
        raise ValueError(f"`n_outputs` must be 1 for head={head!r}. Received: n_outputs={n_outputs}")
    if head == "softmax" and n_outputs < 2:
        raise ValueError(f"`n_outputs` must be >= 2 for head='softmax'. Received: n_outputs={n_outputs}")
    if any(not isinstance(u, (int, np.integer)) or u < 1 for u in hidden):
        raise ValueError(f"`hidden` must hold integers >= 1. Received: hidden={tuple(hidden)}")
    if activation not in HIDDEN_ACTIVATIONS:
        raise ValueError(
            f"`activation` must be one of {', '.join(HIDDEN_ACTIVATIONS)}. "
            f"Received: activation={activation!r}"
        )
    if not l2 >= 0:
        raise ValueError(f"`l2` must be >= 0. Received: l2={l2}")
    if not 0 <= dropout < 1:
        raise ValueError(f"`dropout` must be in [0, 1). Received: dropout={dropout}")
    if target_scale is not None and not target_scale[1] > 0:
        raise ValueError(f"`target_scale` must be (offset, scale > 0). Received: {target_scale}")


def build(
    x_train,
    *,
    head,
    n_outputs=1,
    hidden=(16, 8),
    activation="relu",
    l2=0.0,
    dropout=0.0,
    target_scale=None,
    name="mlp",
):
    """Builds an MLP: normalization, hidden layers, output head (and target rescaling).

    Args:
        x_train: the training rows; the `Normalization` layer is adapted on them.
        head: output activation, one of `HEADS` (`sigmoid`, `softmax`, `relu`, `linear`).
        n_outputs: output units: 1, or the number of classes for `softmax`. Defaults to `1`.
        hidden: units of each hidden layer; `()` for none (a single neuron).
            Defaults to `(16, 8)`.
        activation: hidden-layer activation, one of `HIDDEN_ACTIVATIONS`. Defaults to `"relu"`.
        l2: L2 penalty λ on each hidden kernel (`keras.regularizers.L2`). Defaults to `0.0`.
        dropout: `Dropout` rate after each hidden layer. Defaults to `0.0` (none).
        target_scale: `(offset, scale)` of a regression target: the model ends with
            `Rescaling(scale, offset)`. Defaults to `None` (no rescaling).
        name: the model's name. Defaults to `"mlp"`.

    Returns:
        An uncompiled `keras.Sequential`.

    Raises:
        ValueError: an argument out of range, before any layer is built.
    """
    x_train = np.asarray(x_train, dtype=np.float32)
    hidden = tuple(hidden)
    _check(x_train, head, n_outputs, hidden, activation, l2, dropout, target_scale)
    import keras

    adapted = keras.layers.Normalization()
    adapted.adapt(x_train)
    # Keras divides by max(sqrt(variance), 1e-7): a feature constant in the training rows
    # (a pixel blank in every training digit) would turn any other value met later into
    # millions of standard deviations. Such a feature is centred and left unscaled.
    constant = np.ptp(x_train, axis=0) == 0
    variance = np.where(constant, 1.0, np.asarray(adapted.variance).reshape(-1))
    normalization = keras.layers.Normalization(
        mean=np.asarray(adapted.mean).reshape(-1), variance=variance, name="normalization"
    )
    layers = [keras.Input((x_train.shape[1],), name="features"), normalization]
    for i, units in enumerate(hidden, start=1):
        layers.append(
            keras.layers.Dense(
                int(units), activation=activation, name=f"hidden_{i}",
                kernel_regularizer=keras.regularizers.L2(l2) if l2 > 0 else None,
            )
        )
        if dropout > 0:
            layers.append(keras.layers.Dropout(dropout, name=f"dropout_{i}"))
    # float32 even under a mixed_float16 policy (`--mixed-precision`): the outputs and the
    # loss keep full precision; a float16 sigmoid or softmax saturates.
    layers.append(keras.layers.Dense(n_outputs, activation=head, name="output", dtype="float32"))
    if target_scale is not None:
        offset, scale = target_scale
        layers.append(keras.layers.Rescaling(
            float(scale), offset=float(offset), name="target_scale", dtype="float32"))
    return keras.Sequential(layers, name=name)


def target_scale(head, y_train):
    """The `(offset, scale)` that makes a regression target about unit size.

    A `linear` head is centred on the training mean; a `relu` head is only
    scaled, so its target stays positive. Returns `None` for classification.
    """
    if task_of(head) != "regression":
        return None
    y_train = np.asarray(y_train, dtype=np.float64)
    scale = float(y_train.std()) or 1.0
    if head == "relu":
        return (0.0, float(np.sqrt(np.mean(y_train**2))) or 1.0)
    return (float(y_train.mean()), scale)
