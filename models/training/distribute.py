"""Scaling out on `tf.distribute`: one device, every GPU of a host, or several hosts.

`get_strategy(name)` turns `--strategy` into a TensorFlow strategy:

| name           | strategy                                                         |
|----------------|------------------------------------------------------------------|
| `auto`         | the default strategy: one device (the GPU when there is one)     |
| `mirrored`     | `tf.distribute.MirroredStrategy` over every visible GPU, else the CPU(s) |
| `multi-worker` | `tf.distribute.MultiWorkerMirroredStrategy`, hosts from `TF_CONFIG` |

Build and compile the model under `strategy.scope()`, then train it with
`fit(model, x, y, strategy=...)`, which keeps the contract of
`models.training.fit`: the model's own compiled loss (with its weights and
regularization penalties), metrics and optimizer, Keras callbacks at epoch
boundaries (`EarlyStopping` included), and a `History` back. It is a custom
loop (`strategy.experimental_distribute_dataset` and `strategy.run`): with
TensorFlow 2.21 / Keras 3.15, `model.fit` under `MultiWorkerMirroredStrategy`
fails with "Attempt to convert a value (PerReplica...) to a Tensor"
(keras-team/keras#20585). Each step averages the loss over the global batch
(`--batch-size` rows, split across replicas; each worker reads its own share),
so a distributed run follows the single-device run step for step, up to
floating-point rounding.

Several hosts: every host runs the same command with `--strategy multi-worker`
and a `TF_CONFIG` naming the whole cluster and its own task (`read_tf_config`
shows the shape). Every worker trains the same weights; only the chief
(`is_chief`: the `chief` task, else worker 0) writes exports and figures.

Mixed precision (`--mixed-precision`): models built inside `precision_policy(True)`
compute their hidden layers in float16 (outputs stay float32); the recipes use it
on a GPU only, where float16 is fast.

This module imports TensorFlow only inside its functions, so `is_chief` and
`read_tf_config` are cheap.
"""

from __future__ import annotations

import contextlib
import json
import os

STRATEGIES = ("auto", "mirrored", "multi-worker")

TF_CONFIG_EXAMPLE = (
    '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
    '"task": {"type": "worker", "index": 0}}'
)
"""A valid two-host `TF_CONFIG` (index 1 on the second host)."""

_TASK_TYPES = ("chief", "worker")


class DistributeError(RuntimeError):
    """A strategy that cannot start as configured; the message says what to fix."""


def _bad_config(problem):
    return DistributeError(
        f"`--strategy multi-worker` reads the cluster from the TF_CONFIG environment "
        f"variable, and {problem} Set TF_CONFIG on every host to the same `cluster` and "
        f"that host's own `task`, e.g. TF_CONFIG='{TF_CONFIG_EXAMPLE}' on host1 and "
        '"index": 1 on host2, then start the same command on each host.'
    )


def read_tf_config(environ=None):
    """Reads and checks the `TF_CONFIG` environment variable of a multi-worker run.

    Args:
        environ: the environment to read. Defaults to `os.environ`.

    Returns:
        The parsed `{"cluster": {...}, "task": {"type": ..., "index": ...}}`.

    Raises:
        DistributeError: TF_CONFIG missing, not JSON, or not a cluster this
            strategy can run; the message names the problem and shows a valid one.
    """
    text = (os.environ if environ is None else environ).get("TF_CONFIG", "").strip()
    if not text:
        raise _bad_config("TF_CONFIG is not set.")
    try:
        config = json.loads(text)
    except json.JSONDecodeError as error:
        raise _bad_config(f"TF_CONFIG is not valid JSON ({error}).") from None
    if not isinstance(config, dict) or not isinstance(config.get("cluster"), dict):
        raise _bad_config("TF_CONFIG has no `cluster` object.")
    cluster = config["cluster"]
    others = sorted(set(cluster) - set(_TASK_TYPES))
    if others:
        raise _bad_config(
            f"its cluster lists task types {others}, which MultiWorkerMirroredStrategy "
            "does not use (only `chief` and `worker`)."
        )
    if not cluster:
        raise _bad_config("its cluster lists no `worker` (or `chief`) addresses.")
    for kind, addresses in cluster.items():
        if (not isinstance(addresses, list) or not addresses
                or not all(_is_address(a) for a in addresses)):
            raise _bad_config(
                f"its cluster's `{kind}` must be a list of \"host:port\" strings. "
                f"Received: {kind}={addresses!r}."
            )
    if len(cluster.get("chief", [])) > 1:
        raise _bad_config(f"its cluster has {len(cluster['chief'])} chiefs; at most one.")
    task = config.get("task")
    if not isinstance(task, dict) or "type" not in task or "index" not in task:
        raise _bad_config(
            f"TF_CONFIG has no `task` with a `type` and an `index`. Received: task={task!r}.")
    kind, index = task["type"], task["index"]
    if kind not in cluster:
        raise _bad_config(f"its task type {kind!r} is not in the cluster ({', '.join(cluster)}).")
    if not isinstance(index, int) or not 0 <= index < len(cluster[kind]):
        raise _bad_config(
            f"its task index must be an integer in [0, {len(cluster[kind]) - 1}] for the "
            f"{len(cluster[kind])} `{kind}` address(es). Received: index={index!r}."
        )
    return config


def _is_address(value):
    host, _, port = value.rpartition(":") if isinstance(value, str) else ("", "", "")
    return bool(host) and port.isdigit()


def is_chief(strategy="auto", environ=None):
    """Whether this process writes the run's outputs (exports, figures).

    Always true for `auto` and `mirrored` (one process). For `multi-worker`,
    true for the `chief` task, or for worker 0 when the cluster has no chief.

    Args:
        strategy: the strategy's name, one of `STRATEGIES`. Defaults to `"auto"`.
        environ: the environment holding `TF_CONFIG`. Defaults to `os.environ`.

    Raises:
        DistributeError: `multi-worker` with a missing or malformed TF_CONFIG.
    """
    _check_name(strategy)
    if strategy != "multi-worker":
        return True
    config = read_tf_config(environ)
    return _chief(config["task"]["type"], config["task"]["index"], config["cluster"])


def _chief(kind, index, cluster):
    return kind == "chief" or (kind == "worker" and index == 0 and "chief" not in cluster)


def _check_name(name):
    if name not in STRATEGIES:
        raise ValueError(
            f"`strategy` must be one of {', '.join(STRATEGIES)}. Received: strategy={name!r}")


_STRATEGIES = {}


def get_strategy(name="auto"):
    """Returns the `tf.distribute` strategy called `name`, one per process.

    Create it before any other TensorFlow work (and after choosing the device):
    `MultiWorkerMirroredStrategy` configures the process's collective ops, which
    TensorFlow allows only at start-up.

    Args:
        name: `"auto"`, `"mirrored"` or `"multi-worker"`. Defaults to `"auto"`.

    Returns:
        A `tf.distribute.Strategy`.

    Raises:
        ValueError: an unknown name.
        DistributeError: `multi-worker` with a bad TF_CONFIG, or too late in the process.
    """
    _check_name(name)
    import tensorflow as tf

    if name == "auto":
        return tf.distribute.get_strategy()
    if name in _STRATEGIES:
        return _STRATEGIES[name]
    if name == "mirrored":
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        strategy = tf.distribute.MirroredStrategy([d.name for d in devices])
    else:
        read_tf_config()
        try:
            strategy = tf.distribute.MultiWorkerMirroredStrategy()
        except RuntimeError as error:
            raise DistributeError(
                f"MultiWorkerMirroredStrategy could not start: {error}. It must be the first "
                "TensorFlow work of its process: run the recipe from the command line "
                "(`python -m recipes.run NAME --strategy multi-worker`) on every host."
            ) from None
    _STRATEGIES[name] = strategy
    return strategy


def is_default(strategy):
    """Whether `strategy` is TensorFlow's default (one device, no distribution)."""
    import tensorflow as tf

    return strategy is tf.distribute.get_strategy() and not tf.distribute.has_strategy()


def describe(strategy):
    """What `strategy` runs on, JSON-ready.

    Returns:
        `{"strategy": class name, "replicas": N, "workers": W, "task": "worker:0" or
        None, "chief": bool}`.
    """
    resolver = getattr(strategy, "cluster_resolver", None)
    task, workers, chief = None, 1, True
    if resolver is not None and resolver.task_type:
        spec = resolver.cluster_spec().as_dict()
        workers = sum(len(spec.get(kind, [])) for kind in _TASK_TYPES)
        task = f"{resolver.task_type}:{resolver.task_id}"
        chief = _chief(resolver.task_type, resolver.task_id, spec)
    import tensorflow as tf

    # tf.distribute.MultiWorkerMirroredStrategy's class is called CollectiveAllReduceStrategy.
    name = type(strategy).__name__
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        name = "MultiWorkerMirroredStrategy"
    elif isinstance(strategy, tf.distribute.MirroredStrategy):
        name = "MirroredStrategy"
    return {"strategy": name, "replicas": int(strategy.num_replicas_in_sync),
            "workers": workers, "task": task, "chief": chief}


@contextlib.contextmanager
def precision_policy(mixed):
    """Builds models in `mixed_float16` inside the block when `mixed` is true.

    Hidden layers then compute in float16 and keep float32 weights; layers
    built with `dtype="float32"` (the MLP's output and target rescaling) stay
    float32, and `model.compile` wraps the optimizer in a `LossScaleOptimizer`.
    The previous global policy is restored on exit. Use it only on a GPU:
    a CPU has no fast float16 arithmetic.

    Args:
        mixed: whether to use `mixed_float16`.
    """
    if not mixed:
        yield
        return
    import keras

    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def _batches(x, y, orders, batch):
    """Every epoch's batches, in the order `orders` gives, as one `tf.data` pipeline."""
    import tensorflow as tf

    x, y = tf.constant(x), tf.constant(y)
    dataset = tf.data.Dataset.from_tensor_slices(orders).flat_map(
        lambda order: tf.data.Dataset.from_tensor_slices(order).batch(batch)
    ).map(lambda rows: (tf.gather(x, rows), tf.gather(y, rows)))
    return _shard_by_data(dataset)


def _shard_by_data(dataset):
    """Each worker keeps its replicas' slices of every global batch (in-memory data)."""
    import tensorflow as tf

    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def fit(
    model,
    x,
    y,
    *,
    strategy,
    epochs,
    batch_size=32,
    validation_data=None,
    callbacks=(),
    seed=0,
    verbose=1,
):
    """Trains a `model` compiled under `strategy.scope()`, like `models.training.fit`.

    Each step takes the next `batch_size` rows of a seeded shuffle (the same
    rows, in the same order, as `models.training.fit` with the same seed),
    splits them across the replicas, and averages the model's compiled loss
    over the whole global batch (`tf.nn.compute_average_loss`'s rule, exact
    when the last batch does not split evenly). The Keras optimizer sums the
    replicas' gradients, so every replica (and every worker) applies the same
    update. Metrics are summed over replicas and reported once per epoch;
    callbacks see the same logs on every worker, so `EarlyStopping` stops them
    all at the same epoch.

    Args:
        model: a Keras model built and compiled under `strategy.scope()`.
        x: training features, `[rows, features]`; every worker passes the same rows.
        y: training targets.
        strategy: a `tf.distribute.Strategy` (`get_strategy`).
        epochs: passes over the training rows.
        batch_size: global rows per step, or `"full"` for all of them. Defaults to `32`.
        validation_data: `(x_val, y_val)` evaluated after each epoch (`val_` logs).
            Defaults to `None`.
        callbacks: Keras callbacks, called at train and epoch boundaries. Defaults to `()`.
        seed: seeds the per-epoch shuffle. Defaults to `0`.
        verbose: `1` shows progress once per epoch, `0` is silent. Defaults to `1`.

    Returns:
        A `keras.callbacks.History`; its `history` dict also holds `epoch_seconds`,
        and `steps_per_epoch` is set, as with `models.training.fit`.

    Raises:
        ValueError: empty data, or a bad `epochs` or `batch_size`.
    """
    import numpy as np
    import tensorflow as tf

    from models.training.loop import EVALUATION_BATCH, batching, calling, is_lean, run_epochs, tracing

    x, y = np.asarray(x, dtype=np.float32), np.asarray(y)
    n = len(x)
    batch, steps = batching(n, batch_size, epochs)
    replicas = strategy.num_replicas_in_sync

    def replica_loss(data, global_rows, training):
        """This replica's share of the global batch's mean loss, and its metric updates."""
        x_part, y_part = data
        rows = tf.shape(x_part)[0]
        # Keras's compiled loss is the mean over this replica's rows divided by the
        # number of replicas; weighting every row by replicas * rows / global_rows
        # makes it sum(loss) / global_rows, and the penalties count once in total.
        share = tf.cast(replicas * rows, tf.float32) / tf.cast(global_rows, tf.float32)
        y_pred = model(x_part, training=training)
        loss = model.compute_loss(x=x_part, y=y_part, y_pred=y_pred,
                                  sample_weight=tf.fill([rows], share), training=training)
        return loss, y_pred

    def train_step(data, global_rows):
        with tf.GradientTape() as tape:
            loss, y_pred = replica_loss(data, global_rows, training=True)
            scaled = model.optimizer.scale_loss(loss)
        gradients = tape.gradient(scaled, model.trainable_variables)
        model.optimizer.apply_gradients(zip(gradients, model.trainable_variables))
        model.compute_metrics(data[0], data[1], y_pred, sample_weight=None)
        return loss

    def test_step(data, global_rows):
        loss, y_pred = replica_loss(data, global_rows, training=False)
        model.compute_metrics(data[0], data[1], y_pred, sample_weight=None)
        return loss

    def run_steps(step, iterator, count, size, total_rows):
        """`count` steps of `size` rows (the last one shorter); the mean loss over the rows."""
        total = tf.constant(0.0)
        for i in tf.range(count):
            global_rows = tf.minimum(size, total_rows - i * size)
            losses = strategy.run(step, args=(next(iterator), global_rows))
            total += strategy.reduce("SUM", losses, axis=None) * tf.cast(global_rows, tf.float32)
        return total / total_rows, model.get_metrics_result()

    rng = np.random.default_rng(seed)
    orders = np.stack([rng.permutation(n) for _ in range(epochs)])
    with strategy.scope():
        _build_state(model, strategy, x, y)
        train_batches = iter(strategy.experimental_distribute_dataset(
            _batches(x, y, orders, batch)))
        train_epoch = tf.function(
            lambda iterator: run_steps(train_step, iterator, steps, batch, n))
        evaluate = None
        if validation_data is not None:
            x_val = np.asarray(validation_data[0], dtype=np.float32)
            y_val = np.asarray(validation_data[1])
            val_batch = min(EVALUATION_BATCH, len(x_val))
            val_steps = -(-len(x_val) // val_batch)
            val_dataset = tf.data.Dataset.from_tensor_slices((x_val, y_val)).batch(val_batch)
            val_batches = iter(strategy.experimental_distribute_dataset(
                _shard_by_data(val_dataset.repeat())))
            evaluate = tf.function(
                lambda iterator: run_steps(test_step, iterator, val_steps, val_batch, len(x_val)))

        # One replica, a small model, CPUs: traced and called as `models.training.fit` does
        # (on the default executor still), so both compute the same numbers. Not with more
        # replicas: a graph `While` cannot span devices, and collectives need threads.
        lean = replicas == 1 and is_lean(model)
        with tracing(lean):
            train_epoch.get_concrete_function(train_batches)
            if evaluate is not None:
                evaluate.get_concrete_function(val_batches)
        call = calling(lean)

        def run_epoch(epoch):
            _reset_metrics(model)
            with call:
                logs = _logs(*train_epoch(train_batches))
            if evaluate is not None:
                _reset_metrics(model)
                with call:
                    logs.update({f"val_{k}": v for k, v in _logs(*evaluate(val_batches)).items()})
            return logs

        return run_epochs(model, run_epoch, epochs=epochs, steps=steps, callbacks=callbacks,
                          verbose=verbose)


def _build_state(model, strategy, x, y):
    """Creates the optimizer and metric variables, under the strategy, before training."""
    import tensorflow as tf

    model.optimizer.build(model.trainable_variables)

    def build(sample_x, sample_y):
        prediction = model(sample_x, training=False)
        model.compute_loss(x=sample_x, y=sample_y, y_pred=prediction, training=False)
        model.compute_metrics(sample_x, sample_y, prediction, sample_weight=None)

    tf.function(lambda: strategy.run(build, args=(x[:1], y[:1])))()
    _reset_metrics(model)


def _reset_metrics(model):
    for metric in model.metrics:
        metric.reset_state()


def _logs(loss, metrics):
    """Epoch logs: the global-batch loss, then the model's other metrics, as floats."""
    logs = {"loss": float(loss)}
    logs.update({k: float(v) for k, v in metrics.items() if k != "loss"})
    return logs
