"""The optimizers the recipes name: Keras's built-ins, by the names the CLI takes.

`momentum` is `SGD` with momentum 0.9 (the notes' Momentum); the others are
Keras's `SGD`, `Adagrad`, `RMSprop` and `Adam` with their own defaults but the
learning rate. Standard library only at import time (`NAMES` feeds the CLI's
option table, which must not import TensorFlow).

Example:

>>> from models.training import optimizers
>>> optimizers.make("momentum", 0.01).get_config()["momentum"]
0.9
"""

from __future__ import annotations

import math

NAMES = ("sgd", "momentum", "adagrad", "rmsprop", "adam")
"""Optimizer names, in the order the notes present them."""


def make(name, learning_rate):
    """Returns a new Keras optimizer called `name` with step size `learning_rate`.

    Args:
        name: one of `NAMES`.
        learning_rate: the step size, a number > 0.

    Returns:
        A `keras.optimizers.Optimizer` (a fresh one: an optimizer serves one model).

    Raises:
        ValueError: an unknown name or a learning rate that is not > 0.
    """
    if name not in NAMES:
        raise ValueError(f"`optimizer` must be one of {', '.join(NAMES)}. Received: optimizer={name!r}")
    if not (isinstance(learning_rate, (int, float)) and math.isfinite(learning_rate)
            and learning_rate > 0):
        raise ValueError(f"`learning_rate` must be a number > 0. Received: learning_rate={learning_rate}")
    import keras

    rate = float(learning_rate)
    return {
        "sgd": lambda: keras.optimizers.SGD(learning_rate=rate),
        "momentum": lambda: keras.optimizers.SGD(learning_rate=rate, momentum=0.9),
        "adagrad": lambda: keras.optimizers.Adagrad(learning_rate=rate),
        "rmsprop": lambda: keras.optimizers.RMSprop(learning_rate=rate),
        "adam": lambda: keras.optimizers.Adam(learning_rate=rate),
    }[name]()
