"""What the `gradient-descent` and `optimizers` lessons measure besides training.

The recipes train their variants themselves (the loop is on their page); these
helpers turn what the training gave into the lesson's numbers:

- `timing`: one run's wall seconds, split into the one-off tracing of the
  epoch loop and the steady seconds per epoch.
- `walk`: the notes' walk of one weight, W_new = W_old − η·∂C/∂w, by hand in
  NumPy and by Keras's `SGD`, side by side.
- `keras_trajectory` / `KerasReplay` / `random_gradients` / `reference_max_abs_diff`:
  `models.lessons.update_rules` against `keras.optimizers.*` on the same gradients
  (Keras's steps replayed in one traced graph loop);
- `epochs_to_target`, `state_per_weight`: when a loss curve reaches a target,
  and how much state an optimizer keeps per weight.
"""

from __future__ import annotations

import statistics

import keras
import numpy as np

from models.lessons import update_rules
from models.training import loop, optimizers


def timing(epoch_seconds):
    """Splits per-epoch wall seconds into tracing, steady seconds per epoch, and a clock.

    The first epoch also traces and compiles the epoch loop (a fixed cost of
    about a second, whatever the batch size); later epochs are steady.

    Returns:
        `(tracing_seconds, seconds_per_epoch, clock)`: `clock[i]` is the wall
        time at the end of epoch i + 1 without the tracing.
    """
    steady = statistics.median(epoch_seconds[1:]) if len(epoch_seconds) > 1 else epoch_seconds[0]
    tracing = max(0.0, epoch_seconds[0] - steady)
    clock = np.cumsum(epoch_seconds) - tracing
    return tracing, steady, clock.tolist()


def epochs_to_target(losses, target):
    """The first epoch (1-based) whose training loss is <= `target`, or `None`."""
    return next((i + 1 for i, loss in enumerate(losses) if loss <= target), None)


def _bce(p, y):
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def walk(split, feature_names, *, feature, start, learning_rate, steps, seed):
    """The notes' one-weight walk, done for real on a sigmoid neuron and its log loss.

    The model is p = σ(w·x): one weight, no bias, on one standardized feature
    of the training split; the loss is the binary cross-entropy
    C(w) = −mean(y·log p + (1 − y)·log(1 − p)), whose derivative is
    ∂C/∂w = mean((p − y)·x). By hand (NumPy, float64): W_new = W_old − η·∂C/∂w.
    By Keras: the same neuron as a `Dense(1, sigmoid, use_bias=False)` with
    kernel `start`, trained by `SGD(learning_rate)` with the whole training
    split as one batch, one step per epoch.

    Args:
        split: a `models.data.Split` of a binary data set (`PreparedData.split`).
        feature_names: the column names of `split.x_train`.
        feature: the column to use.
        start: the first weight.
        learning_rate: η.
        steps: how many updates.
        seed: seeds the (one-batch) shuffle.

    Returns:
        One dict per step: `step`, `weight` (W_old), `loss` (C(W_old)), `gradient`
        (∂C/∂w at W_old), `new_weight` (by hand), `keras_new_weight`.
    """
    column = split.x_train[:, list(feature_names).index(feature)].astype(np.float64)
    x = (column - column.mean()) / column.std()
    y = split.y_train.astype(np.float64)

    model = keras.Sequential([
        keras.Input((1,)),
        keras.layers.Dense(1, activation="sigmoid", use_bias=False,
                           kernel_initializer=keras.initializers.Constant(start)),
    ])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate), loss="binary_crossentropy")
    kernel = model.layers[-1].kernel
    keras_weights = []
    record = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: keras_weights.append(float(kernel.numpy()[0, 0])))
    loop.fit(model, x[:, None].astype(np.float32), split.y_train, epochs=steps,
                 batch_size="full", callbacks=[record], seed=seed, verbose=0)

    rows, w = [], float(start)
    for step, keras_w in enumerate(keras_weights, start=1):
        p = 1 / (1 + np.exp(-w * x))
        gradient = float(np.mean((p - y) * x))
        new = w - learning_rate * gradient
        rows.append({"step": step, "weight": w, "loss": _bce(p, y), "gradient": gradient,
                     "new_weight": new, "keras_new_weight": keras_w})
        w = new
    return rows


def keras_trajectory(name, weights, gradients, learning_rate):
    """Applies Keras's optimizer `name` to the gradients in turn.

    `name` is one of `models.training.optimizers.NAMES`. The steps run in one
    traced graph loop (`KerasReplay`), not one eager `apply` per step: the same
    float32 kernels in the same order, so the same weights, bit for bit.

    Returns:
        The weights after every step, `[steps, *weights.shape]`, in the weights' dtype.
    """
    weights = np.asarray(weights)
    return KerasReplay(name, weights.shape, weights.dtype)(weights, gradients, learning_rate)


class KerasReplay:
    """Keras's optimizer `name` on one variable, replayed over a sequence of gradients.

    One Keras optimizer (`models.training.optimizers.make`) built on one
    variable of `shape`, and one `tf.function` that applies it to every
    gradient of a sequence in a graph `while_loop` and returns the weights
    after each step. It is traced once per sequence length; each call starts
    afresh (the variable set to the given weights, the optimizer's variables
    back to their state when built) at the learning rate it is given, so one
    replay serves several learning rates. Grappler is off for its calls, so
    the graph runs the very kernels an eager `optimizer.apply` runs (its
    arithmetic rewrites, e.g. sqrt-then-divide into rsqrt-then-multiply, would
    change the last bits).

    Args:
        name: one of `models.training.optimizers.NAMES`.
        shape: the weights' shape.
        dtype: the weights' dtype. Defaults to `float32`.
    """

    def __init__(self, name, shape, dtype=np.float32):
        import tensorflow as tf

        from models import tensorflow_internals

        dtype = np.dtype(dtype)
        self.variable = keras.Variable(np.zeros(shape, dtype), dtype=dtype.name)
        self.optimizer = optimizers.make(name, 0.01)
        self.optimizer.build([self.variable])
        self._initial = [np.array(v.numpy()) for v in self.optimizer.variables]
        self._dtype = dtype
        self._options = tensorflow_internals.call_options()
        optimizer, variable = self.optimizer, self.variable

        @tf.function(autograph=False)
        def replay(gradients):
            steps = tf.shape(gradients)[0]

            def step(i, path):
                optimizer.apply([gradients[i]], [variable])
                return i + 1, path.write(i, variable.value.read_value())

            path = tf.TensorArray(variable.dtype, size=steps, element_shape=variable.shape)
            _, path = tf.while_loop(lambda i, path: i < steps, step, (tf.constant(0), path))
            return path.stack()

        self._replay = replay

    def __call__(self, weights, gradients, learning_rate):
        """The weights after every step, `[steps, *shape]`, from `weights` at `learning_rate`."""
        for state, value in zip(self.optimizer.variables, self._initial):
            state.assign(value)
        self.variable.assign(np.asarray(weights, self._dtype))
        self.optimizer.learning_rate = float(learning_rate)
        with self._options:
            path = self._replay(np.asarray(gradients, self._dtype))
        return np.asarray(path)


def random_gradients(steps, shape, seed, dtype=np.float32):
    """Seeded gradients whose sizes span 1e-4 to 10, so ε matters in some steps."""
    rng = np.random.default_rng(seed)
    size = (steps, *shape)
    return (rng.normal(size=size) * 10 ** rng.uniform(-4, 1, size=size)).astype(dtype)


REFERENCE_LEARNING_RATES = (0.001, 0.01, 0.1, 0.5)
"""The learning rates at which the reference rules are checked against Keras."""

REFERENCE_STEPS = 25
"""How many steps each check takes."""


def reference_max_abs_diff(name, learning_rates=REFERENCE_LEARNING_RATES, *,
                           steps=REFERENCE_STEPS, shape=(8, 4), seed=0):
    """The largest |reference − Keras| weight difference over several learning rates.

    For each learning rate: float32 weights drawn from N(0, 1), `steps` random
    gradients (`random_gradients`), applied by `models.lessons.update_rules.RULES[name]`
    and by Keras's optimizer; the difference is taken after every step.
    """
    rng = np.random.default_rng(seed)
    replay = KerasReplay(name, shape)  # one traced loop for every learning rate
    worst = 0.0
    for i, learning_rate in enumerate(learning_rates):
        weights = rng.normal(size=shape).astype(np.float32)
        gradients = random_gradients(steps, shape, seed + i + 1)
        ours = update_rules.trajectory(name, weights, gradients, learning_rate=learning_rate)
        theirs = replay(weights, gradients, learning_rate)
        worst = max(worst, float(np.max(np.abs(ours - theirs))))
    return worst


def state_per_weight(optimizer, n_weights):
    """How many numbers a built Keras optimizer keeps per model weight (ERRATA #15).

    Its own counters (`iteration`, `learning_rate`) are not counted; each slot
    variable is shaped like a model variable, so the count is a whole number.
    """
    slots = sum(int(np.prod(v.shape)) for v in optimizer.variables
                if v.name not in ("iteration", "learning_rate"))
    return slots // n_weights
