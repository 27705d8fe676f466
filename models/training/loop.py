"""Training a compiled Keras model fast: a whole epoch in one `tf.function`.

`model.fit` pays Python and dispatch overhead on every batch, which for the
small models of the notes is most of the time. `fit` here runs the model's own
`train_step` (Keras's loss, regularization penalties, metrics and optimizer
update, unchanged) over every batch of an epoch inside one traced TensorFlow
loop, then calls the usual Keras callbacks once per epoch. `EarlyStopping`,
`History`, `ModelCheckpoint` and any callback that acts at epoch ends work as
with `model.fit`; per-batch callback hooks are not called (so Keras's
`TerminateOnNaN` does nothing here: use `TerminateOnNonFinite`).

Speed: the epoch and its validation are one call of a function traced once
per `fit`, without AutoGraph, with the optimizer's update written in fewer
graph ops (`models.training.updates`: same numbers, bit for bit; with Adam,
the first epoch of a digits MLP with 2 hidden layers of 32 took 0.34 s instead
of 0.41, with 10 of them 0.58 s instead of 0.85). A later `fit` of a twin (a
model with the same layers and compilation, names aside, on data of the same
shapes: a lesson's variants from one seed) runs the first one's trace on its own
variables instead of tracing again (`models.training.twins`).

On a CPU-only machine a small model's epoch skips grappler and runs on
TensorFlow's single-threaded executor (`is_lean`). On 2 CPU cores the digits 64-64 MLP (34 steps an epoch) costs
about 0.17 s for the first epoch, tracing included, then about 4.6 ms an
epoch: 50 epochs in 0.46 s, as fast as scikit-learn's `MLPClassifier`
(`scripts/bench.py`). `python -m recipes.run` also sets
`TF_NUM_INTRAOP_THREADS=1`: same numbers, and 20-40% less time per epoch
for small models off the lean path (on it, about the same time); set it
before TensorFlow starts to get the same in your own process.

Example:

>>> import keras, numpy as np
>>> from models import training
>>> x = np.random.default_rng(0).normal(size=(64, 3)).astype("float32")
>>> y = (x[:, 0] > 0).astype("int64")
>>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1, activation="sigmoid")])
>>> model.compile(optimizer=keras.optimizers.Adam(0.1), loss="binary_crossentropy")
>>> history = training.fit(model, x, y, epochs=5, batch_size=16, verbose=0)
>>> len(history.history["loss"])
5
"""

from __future__ import annotations

import contextlib
import threading
import time

import keras
import numpy as np
import tensorflow as tf
from models import tensorflow_internals
from models.training.twins import Template, signature
from models.training.twins import find as find_twin
from models.training.twins import keep as keep_twin
from models.training.twins import run as run_twin
from models.training.updates import fewer_ops
from models.training.callbacks import EpochLogger

EVALUATION_BATCH = 8192
"""Rows per step when the validation or test rows are scored (memory, not statistics)."""

_TRACE = threading.Lock()
"""One trace at a time: fits side by side (`Run.fit_each`) take turns to trace.

A trace is Python building a graph, so it holds the GIL throughout: two at
once take as long as one after the other, and meanwhile the second core
idles. In turns, one fit's epochs (graph calls, GIL released) run on one
core while the next fit traces on the other.
"""

def _build_state(model, x, y):
    """Creates the optimizer and metric variables outside the traced loop.

    A `tf.function` may create variables on its first trace only, and Keras
    builds the optimizer slots and the compiled loss and metrics lazily: one
    eager step on one row (no update) creates them all here.
    """
    model.optimizer.build(model.trainable_variables)  # a no-op once built: a second fit goes on
    sample_x, sample_y = x[:1], y[:1]
    prediction = model(sample_x, training=False)
    model.compute_loss(x=sample_x, y=sample_y, y_pred=prediction, training=False)
    model.compute_metrics(sample_x, sample_y, prediction, sample_weight=None)
    _reset_metrics(model)


def _reset_metrics(model):
    for metric in model.metrics:
        metric.reset_state()


def _logs(values):
    return {k: float(v) for k, v in values.items()}


def _repeat(count, body):
    """Runs `body(step)` for `step` in `range(count)` as one graph loop (inline if once)."""
    if count == 1:
        body(tf.constant(0))
        return

    def next_step(step):
        body(step)
        return (step + 1,)

    tf.while_loop(lambda step: step < count, next_step, (tf.constant(0),))


def _epoch_function(model, x, y, batch, validation_data=None):
    """Returns `run_epoch(order) -> logs`: one epoch of training and validation in one call.

    The whole epoch is one `tf.function` call: reset the metrics, run the
    model's own `train_step` on the rows of `order` batch by batch (a graph
    `while_loop`), read the training metrics, then reset them and run
    `test_step` over the validation rows (`val_` logs). It is traced without
    AutoGraph (Keras's step functions need none; converting them made the
    trace of the digits MLP's epoch about a quarter longer, 0.22 s against
    0.17 s) and once per `fit`: the order changes every epoch, its shape
    never. Per epoch, Python does one call and converts a few scalars; the
    metrics are reset inside the call, not by eager ops around it.

    Args:
        model: a compiled model whose state `_build_state` has created.
        x: training features, a float32 tensor.
        y: training targets, a tensor.
        batch: rows per training step.
        validation_data: `(x_val, y_val)` arrays, or `None`. Defaults to `None`.

    Returns:
        A function of a NumPy permutation of the training rows that returns the
        epoch's logs as a dict of Python floats.
    """
    steps = -(-int(x.shape[0]) // batch)
    if validation_data is not None:
        x_val = tf.convert_to_tensor(np.asarray(validation_data[0], dtype=np.float32))
        y_val = tf.convert_to_tensor(np.asarray(validation_data[1]))
        val_steps = -(-int(x_val.shape[0]) // EVALUATION_BATCH)

    def train_batch(order, step):
        rows = order[step * batch:(step + 1) * batch]
        model.train_step((tf.gather(x, rows), tf.gather(y, rows)))

    def validation_batch(step):
        start = step * EVALUATION_BATCH
        end = start + EVALUATION_BATCH
        model.test_step((x_val[start:end], y_val[start:end]))

    # Reads and resets of a metric's variables run in program order: TensorFlow
    # chains the stateful ops on each variable inside a tf.function.
    @tf.function(autograph=False)
    def epoch(order):
        _reset_metrics(model)
        _repeat(steps, lambda step: train_batch(order, step))
        logs = dict(model.get_metrics_result())
        if validation_data is not None:
            _reset_metrics(model)
            _repeat(val_steps, validation_batch)
            logs.update({f"val_{k}": v for k, v in model.get_metrics_result().items()})
        return logs

    lean = is_lean(model)
    tensors = [x, y] + ([x_val, y_val] if validation_data is not None else [])
    key = signature(model, tensors, batch, lean)
    twin = find_twin(key, model, tensors)  # an epoch traced for a model of this architecture
    call = None  # this model's own traced epoch, once traced

    def run_epoch(order):
        nonlocal call
        order = tf.constant(order)
        if twin is not None:  # the twin's graph, on this model's variables and rows
            return _logs(run_twin(*twin, order))
        if call is None:  # traces once, then decides how every call runs
            with _TRACE, tracing(lean), fewer_ops(model.optimizer):
                concrete = epoch.get_concrete_function(order)
            call_options = calling(lean, single_threaded=not _has_conditionals(concrete.graph))
            run_epoch.call_options = call_options  # for inspection: how it runs
            template = Template(model, tensors, concrete, call_options, epoch)
            keep_twin(key, template)
            call = _direct(template)
        return _logs(call(order))

    if twin is not None:
        run_epoch.call_options = twin[0].call_options
        run_epoch.function = twin[0].function
        run_epoch.shared = True  # for inspection: it runs a twin's traced epoch
        return run_epoch
    run_epoch.function = epoch  # for inspection: e.g. its tracing count
    return run_epoch


def _direct(template):
    """Calls `template`'s traced epoch on its own model as a twin's is called.

    The `tf.function`'s own call binds its arguments and looks up its traces
    before it runs one: about 0.15 ms an epoch on 2 CPU cores, which took
    `linear-unit`'s 1,500 full-batch epochs from 0.83 to 0.58 s. Without TensorFlow's private flat call
    (`models.tensorflow_internals`) the traced `ConcreteFunction` is called,
    which skips the lookup.
    """
    if tensorflow_internals.can_call_with_captures():
        captures = template.concrete.captured_inputs
        return lambda order: run_twin(template, captures, order)

    def call(order):
        with template.call_options:
            return template.concrete(order)

    return call


LEAN_PARAMETERS = 100_000
"""Models with at most this many trainable weights train on the lean path (CPU only)."""

SINGLE_THREADED = "SINGLE_THREADED_EXECUTOR"
_CONTROL_FLOW = frozenset({"If", "StatelessIf", "Case", "StatelessCase", "While", "StatelessWhile"})


def is_lean(model):
    """Whether `model` trains on the lean path: a CPU-only machine and a small model.

    TensorFlow optimizes a function's graph (grappler) at its first call,
    lowers its loops to switch/merge primitives, and runs it on an executor
    that hands ops between threads. For a small model that is mostly
    overhead. On the lean path a training function is traced with its loops
    kept as graph `While` ops (`tracing`) and called with grappler off,
    on TensorFlow's single-threaded executor where it can be (`calling`).
    On 2 CPU cores, for the digits 64-64 MLP (9,000 weights, 34 steps an
    epoch) that takes the first epoch from about 0.30 s to 0.17 s and later
    ones from 6.2 to 4.7 ms, with the same losses and accuracies (to 1e-5
    in `tests/test_performance.py`).

    Past about `LEAN_PARAMETERS` weights it costs instead: the loop body
    then misses TensorFlow's oneDNN rewrites and grappler's fusions. In
    `scripts/bench_lean.py` (2 hidden layers on digits, 2 cores) a later
    epoch on the lean path took 0.69x the default path's time at 9,000
    weights, 0.85x at 51,000, 1.00x at 85,000, 1.04x at 127,000 and 1.40x
    at 301,000, while its first epoch stayed about 0.06 s cheaper; the
    threshold sits at the crossover. With a GPU nothing changes (grappler's
    layout and fusion passes matter there).
    """
    if tf.config.list_logical_devices("GPU"):
        return False
    return sum(int(np.prod(v.shape)) for v in model.trainable_variables) <= LEAN_PARAMETERS


def tracing(lean):
    """A context manager to trace a training function in, for `calling(lean)`.

    Lean: loops traced inside it stay graph `While` ops, which the
    single-threaded executor needs (TensorFlow decides at trace time, from
    the executor then set). Not lean: changes nothing.
    """
    return tf.experimental.function_executor_type(SINGLE_THREADED) if lean else contextlib.nullcontext()


def calling(lean, single_threaded=False):
    """A context manager to call a function traced under `tracing(lean)` in; reusable.

    Lean: grappler is off for calls inside it and, with `single_threaded`,
    they run on the single-threaded executor. That executor hangs on a
    conditional inside a loop (the mixed-precision `LossScaleOptimizer` has
    one), so pass it only for a graph without any (`_has_conditionals`), and
    never for collective ops (`models.training.distribute`). Not lean: changes nothing.

    The options are thread-local, and must be the same at every call of a
    function (TensorFlow keeps one instance of it per call options). The
    executor is set as `tf.experimental.function_executor_type` sets it; the
    grappler switch goes through TensorFlow's private `FunctionCallOptions`,
    which has no public setter (`models.tensorflow_internals`: without it,
    the default options, same numbers).
    """
    if not lean:
        return contextlib.nullcontext()
    return tensorflow_internals.call_options(SINGLE_THREADED if single_threaded else "")


def _has_conditionals(graph):
    """Whether the functions `graph` calls hold a conditional or a loop of their own."""
    return any(
        node.op in _CONTROL_FLOW
        for function in graph.as_graph_def().library.function
        for node in function.node_def
    )


def fit(
    model,
    x,
    y,
    *,
    epochs,
    batch_size=32,
    validation_data=None,
    callbacks=(),
    seed=0,
    verbose=1,
    initial_epoch=0,
):
    """Trains a compiled `model` like `model.fit`, a whole epoch per `tf.function` call.

    Args:
        model: a compiled Keras model.
        x: training features, `[rows, features]`.
        y: training targets.
        epochs: passes over the training rows.
        batch_size: rows per step, or `"full"` for all of them. Defaults to `32`.
        validation_data: `(x_val, y_val)` evaluated after each epoch (`val_` logs).
            Defaults to `None`.
        callbacks: Keras callbacks, called at train and epoch boundaries. Defaults to `()`.
        seed: seeds the per-epoch shuffle. Defaults to `0`.
        verbose: `1` shows progress (`EpochLogger`), `0` is silent. Defaults to `1`.
        initial_epoch: the epoch to start at, as in `model.fit`: a resumed run
            (`models.training.checkpoints`) passes the epochs already done. The shuffle
            replays that many epochs' permutations first, so epoch k sees the
            same batches as in an uninterrupted run. Defaults to `0`.

    Returns:
        A `keras.callbacks.History` of the epochs run here; its `history` dict
        also holds `epoch_seconds`.
    """
    x = tf.convert_to_tensor(np.asarray(x, dtype=np.float32))
    y = tf.convert_to_tensor(np.asarray(y))
    n = int(x.shape[0])
    batch, steps = batching(n, batch_size, epochs)
    if not (isinstance(initial_epoch, int) and 0 <= initial_epoch <= epochs):
        raise ValueError(
            f"`initial_epoch` must be an integer in [0, epochs={epochs}]. "
            f"Received: initial_epoch={initial_epoch!r}"
        )
    _build_state(model, x, y)
    run_epoch = _epoch_function(model, x, y, batch, validation_data)

    rng = np.random.default_rng(seed)
    for _ in range(initial_epoch):  # the epochs a resumed run has done: same draws, same order
        rng.permutation(n)
    return run_epochs(
        model, lambda epoch: run_epoch(rng.permutation(n)), epochs=epochs, steps=steps,
        callbacks=callbacks, verbose=verbose, initial_epoch=initial_epoch,
    )


def batching(n, batch_size, epochs):
    """Checks a `fit`'s rows, `batch_size` and `epochs`; returns `(rows per step, steps per epoch)`.

    Raises:
        ValueError: no rows, or a `batch_size` or `epochs` that is not an integer >= 1
            (`batch_size` may also be `"full"`).
    """
    if n == 0:
        raise ValueError("`x` must hold at least one row. Received: 0 rows")
    if not (batch_size == "full" or (isinstance(batch_size, int) and batch_size >= 1)):
        raise ValueError(f"`batch_size` must be an integer >= 1 or 'full'. Received: batch_size={batch_size!r}")
    if not (isinstance(epochs, int) and epochs >= 1):
        raise ValueError(f"`epochs` must be an integer >= 1. Received: epochs={epochs!r}")
    batch = n if batch_size == "full" else min(int(batch_size), n)
    return batch, -(-n // batch)


def run_epochs(model, run_epoch, *, epochs, steps, callbacks=(), verbose=1, initial_epoch=0):
    """Calls `run_epoch(epoch) -> logs` per epoch with Keras callbacks around it, as `fit` does.

    The epoch loop every training path shares (this module's `fit` and
    `models.training.distribute.fit`): callbacks at train and epoch boundaries, a stop
    when a callback sets `model.stop_training`, progress, and the `History`.

    Returns:
        A `keras.callbacks.History` whose `history` also holds `epoch_seconds`,
        with `steps_per_epoch` set.
    """
    history = keras.callbacks.History()
    extra = [EpochLogger(epochs)] if verbose else []
    callback_list = keras.callbacks.CallbackList(
        [*callbacks, history, *extra], model=model, epochs=epochs, steps=steps, verbose=0
    )
    model.stop_training = False
    epoch_seconds = []
    callback_list.on_train_begin()
    logs = {}
    for epoch in range(initial_epoch, epochs):
        started = time.perf_counter()
        callback_list.on_epoch_begin(epoch)
        logs = run_epoch(epoch)
        epoch_seconds.append(time.perf_counter() - started)
        callback_list.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    callback_list.on_train_end(logs)
    history.history["epoch_seconds"] = epoch_seconds
    history.steps_per_epoch = steps
    return history


def evaluate(model, x, y):
    """Like `model.evaluate(x, y, batch_size=len(x), return_dict=True)`, without its set-up.

    The compiled loss and metrics of all rows as one batch, by the model's own
    `test_step` run once, eagerly: no `tf.data` pipeline and no traced test
    function, which for one batch cost Keras's `evaluate` about 0.25 s on 2
    CPU cores. The metrics are reset before and after.

    Returns:
        A dict of Python floats: `loss` and the compiled metrics, as `evaluate` names them.
    """
    x = tf.convert_to_tensor(np.asarray(x, dtype=np.float32))
    y = tf.convert_to_tensor(np.asarray(y))
    _reset_metrics(model)
    model.test_step((x, y))
    logs = _logs(model.get_metrics_result())
    _reset_metrics(model)
    return logs


def predict(model, x, batch_size=EVALUATION_BATCH):
    """Returns `model(x)` as a NumPy array, in batches, without `model.predict`'s overhead.

    `x` is a float32 matrix, or a dict of arrays for a model with one input per
    column (text columns as arrays of `str`).
    """
    if isinstance(x, dict):
        n = len(next(iter(x.values())))
        outputs = [model({k: tf.constant(v[i:i + batch_size]) for k, v in x.items()},
                         training=False) for i in range(0, n, batch_size)]
        return np.concatenate([np.asarray(o) for o in outputs])
    x = np.asarray(x, dtype=np.float32)
    outputs = [model(x[i:i + batch_size], training=False) for i in range(0, len(x), batch_size)]
    return np.concatenate([np.asarray(o) for o in outputs]) if outputs else np.zeros((0, 1), np.float32)
