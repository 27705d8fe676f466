"""Keras's built-in update rules, traced with fewer graph ops: same kernels, same numbers.

Tracing a training step costs a few hundred microseconds of Python per graph op
on a 2-core CPU, and the optimizer's update is most of the ops: Keras's
`update_step` runs once per model variable and recomputes, for each one, the
casts of the learning rate and the step count, the powers of β (Adam) and
the constants of its formula. With Adam, the loop body of a digits MLP with
2 hidden layers of 32 units has 380 graph nodes with Keras's update and 272
with the one here; for the `vanishing-gradient` lesson's 10-hidden-layer MLP
(22 variables), Keras's update was about half of the epoch's tracing time.

`fewer_ops(optimizer)` is a context manager to trace a training step in: inside
it, the optimizer's per-variable update (its `_backend_update_step`, called by
`optimizer.apply` after gradient clipping and weight decay) is written with
TensorFlow ops directly, the shared scalars computed once per step and the
constants made once. Every value is computed by the same float32 operation on
the same operands in the same order as Keras's `update_step`, so the weights
are the same bit for bit (`tests/test_performance.py` checks each optimizer
over epochs). Outside the block nothing changes.

It applies to Keras's `SGD` (with or without momentum, Nesterov too),
`Adagrad`, `RMSprop` (without momentum, not centred) and `Adam` (not
AMSGrad), used as they are (not subclassed), without a `tf.distribute` strategy
and on dense float gradients, on the Keras releases it was checked against
(`CHECKED_KERAS`); any other optimizer, release or such a step goes through
Keras's own code as before. `_backend_update_step` is Keras's private hook,
replaced on the optimizer instance for the block only: it is the one place
the package writes an optimizer's arithmetic itself, and it is there for
speed alone (the rules themselves, for reading, are `models.lessons.update_rules`).
"""

from __future__ import annotations

import contextlib

import keras
import tensorflow as tf


CHECKED_KERAS = ("3.15.",)
"""The Keras releases whose update rules these are checked against, bit for bit
(`tests/test_performance.py`); with any other, Keras's own code runs."""


def supported(optimizer):
    """Whether `fewer_ops` writes `optimizer`'s update itself (else Keras's own code runs).

    Only for a Keras release in `CHECKED_KERAS` (a later one may change its
    rules), and not with gradient accumulation or an exponential moving
    average of the weights (Keras's `apply` wraps the update in more there).
    """
    kind = type(optimizer)
    if kind not in _RULES or not keras.__version__.startswith(CHECKED_KERAS):
        return False
    if not hasattr(optimizer, "_backend_update_step"):
        return False
    if getattr(optimizer, "gradient_accumulation_steps", None) or getattr(optimizer, "use_ema", False):
        return False
    if getattr(optimizer, "_distribution_strategy", None) is not tf.distribute.get_strategy():
        return False
    if tf.distribute.has_strategy():
        return False
    if kind is keras.optimizers.Adam:
        return not optimizer.amsgrad
    if kind is keras.optimizers.RMSprop:
        return optimizer.momentum == 0 and not optimizer.centered
    return True


@contextlib.contextmanager
def fewer_ops(optimizer):
    """Inside the block, `optimizer`'s traced updates take fewer ops (same numbers).

    Args:
        optimizer: a built Keras optimizer. One that `supported` refuses is left
            as it is.
    """
    if not supported(optimizer):
        yield
        return
    keras_update = optimizer._backend_update_step
    rule = _RULES[type(optimizer)]

    def update(grads, trainable_variables, learning_rate):
        grads = list(grads)
        if any(not isinstance(g, tf.Tensor) or isinstance(g, tf.IndexedSlices) for g in grads) \
                or any(v.dtype not in ("float32", "float64") for v in trainable_variables):
            return keras_update(grads, trainable_variables, learning_rate)
        shared = {}
        for grad, variable in zip(grads, trainable_variables):
            dtype = variable.dtype
            if dtype not in shared:
                shared[dtype] = _Shared(optimizer, learning_rate, dtype)
            rule(optimizer, shared[dtype], tf.cast(grad, dtype), variable)
        return None

    optimizer._backend_update_step = update  # on the instance: the class's method is untouched
    try:
        yield
    finally:
        del optimizer._backend_update_step


class _Shared:
    """The scalars every variable's update in one step shares, made once (lazily)."""

    def __init__(self, optimizer, learning_rate, dtype):
        self.optimizer = optimizer
        self.dtype = dtype
        self.lr = tf.cast(learning_rate, dtype)
        self._constants = {}
        self._alpha = None

    def constant(self, value):
        """A Python number as a tensor of the variables' dtype, as Keras's ops convert it."""
        if value not in self._constants:
            self._constants[value] = tf.constant(value, self.dtype)
        return self._constants[value]

    def adam_alpha(self):
        """Adam's step size with its bias correction: lr·√(1 − β₂ᵗ) / (1 − β₁ᵗ)."""
        if self._alpha is None:
            optimizer = self.optimizer
            local_step = tf.cast(optimizer.iterations + 1, self.dtype)
            beta_1_power = tf.pow(tf.cast(optimizer.beta_1, self.dtype), local_step)
            beta_2_power = tf.pow(tf.cast(optimizer.beta_2, self.dtype), local_step)
            one = self.constant(1)
            self._alpha = self.lr * tf.sqrt(one - beta_2_power) / (one - beta_1_power)
        return self._alpha


def _tf(variable):
    return variable.value if isinstance(variable, keras.Variable) else variable


def _slot(slots, optimizer, variable):
    return _tf(slots[optimizer._get_variable_index(variable)])


def _sgd(optimizer, shared, grad, variable):
    """`keras.optimizers.SGD.update_step`, op for op."""
    var = _tf(variable)
    if optimizer.momentum == 0:
        var.assign_sub(grad * shared.lr, read_value=False)
        return
    m = _slot(optimizer.momentums, optimizer, variable)
    momentum = tf.cast(optimizer.momentum, shared.dtype)
    m.assign(m * momentum - grad * shared.lr, read_value=False)
    if optimizer.nesterov:
        var.assign_add(m * momentum - grad * shared.lr, read_value=False)
    else:
        var.assign_add(m, read_value=False)


def _adagrad(optimizer, shared, grad, variable):
    """`keras.optimizers.Adagrad.update_step`, op for op."""
    accumulator = _slot(optimizer._accumulators, optimizer, variable)
    accumulator.assign_add(tf.square(grad), read_value=False)
    _tf(variable).assign_sub(
        (shared.lr * grad) / tf.sqrt(accumulator + shared.constant(optimizer.epsilon)),
        read_value=False)


def _rmsprop(optimizer, shared, grad, variable):
    """`keras.optimizers.RMSprop.update_step` (no momentum, not centred), op for op."""
    velocity = _slot(optimizer._velocities, optimizer, variable)
    rho = optimizer.rho
    velocity.assign(shared.constant(rho) * velocity + shared.constant(1 - rho) * tf.square(grad),
                    read_value=False)
    _tf(variable).assign_sub(
        (shared.lr * grad) / tf.sqrt(velocity + shared.constant(optimizer.epsilon)),
        read_value=False)


def _adam(optimizer, shared, grad, variable):
    """`keras.optimizers.Adam.update_step` (not AMSGrad), op for op."""
    m = _slot(optimizer._momentums, optimizer, variable)
    v = _slot(optimizer._velocities, optimizer, variable)
    alpha = shared.adam_alpha()
    m.assign_add((grad - m) * shared.constant(1 - optimizer.beta_1), read_value=False)
    v.assign_add((tf.square(grad) - v) * shared.constant(1 - optimizer.beta_2), read_value=False)
    _tf(variable).assign_sub((m * alpha) / (tf.sqrt(v) + shared.constant(optimizer.epsilon)),
                             read_value=False)


_RULES = {
    keras.optimizers.SGD: _sgd,
    keras.optimizers.Adagrad: _adagrad,
    keras.optimizers.RMSprop: _rmsprop,
    keras.optimizers.Adam: _adam,
}
"""Optimizer class -> its update written here."""
