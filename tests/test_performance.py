"""The fast paths stay correct: the training loop, its callbacks, a light CLI.

No timings are asserted here (a shared machine makes them noise); speed is
`scripts/bench.py`'s job. These tests hold what the speed must not cost: the
same training as `model.fit`, the same numbers with one intra-op thread, one
trace per `fit`, callbacks at every epoch, and a `--list` that imports nothing heavy.
`tests/test_models.py` compares the loop with `model.fit` on iris; here it is
the benchmark's own job (digits, 64-64) and a binary head.
"""

import contextlib
import io
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from builders import mlp, prepared
from models import data
from models.data.prepared import prepare
from models.training import evaluation
from models.training import loop as training

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("tensorflow", "keras", "sklearn", "matplotlib", "numpy")


@pytest.fixture(scope="module")
def digits():
    return prepared("digits", "softmax", seed=0)


def _model(split, head="softmax", n_outputs=10, hidden=(64, 64), seed=0, learning_rate=0.001):
    keras.utils.set_random_seed(seed)
    return mlp(split, head, hidden=hidden, learning_rate=learning_rate)


def _accuracy(task, model, split, n_classes):
    outputs = training.predict(model, split.x_test)
    return evaluation.metrics(task, split.y_test, outputs, n_classes)["accuracy"]


@pytest.mark.parametrize("name, head, n_outputs", [("digits", "softmax", 10), ("breast_cancer", "sigmoid", 1)])
def test_fast_loop_trains_as_well_as_model_fit(name, head, n_outputs):
    """The benchmark's job, a few epochs: same seed, about the same loss and test accuracy."""
    dataset = data.load(name)
    split = prepare(dataset, seed=0)
    runs = {}
    for loop in ("ours", "model.fit"):
        model = _model(split, head=head, n_outputs=n_outputs, seed=3)
        args = (split.x_train, split.y_train)
        kwargs = dict(epochs=6, batch_size=32, verbose=0, validation_data=(split.x_val, split.y_val))
        if loop == "ours":
            history = training.fit(model, *args, seed=3, **kwargs)
        else:
            history = model.fit(*args, **kwargs)
        runs[loop] = (history.history, _accuracy(dataset.task, model, split, dataset.n_classes))
    (ours, ours_accuracy), (keras_fit, keras_accuracy) = runs["ours"], runs["model.fit"]
    assert set(ours) == set(keras_fit) | {"epoch_seconds"}
    assert ours["loss"][-1] < ours["loss"][0] / 2
    assert abs(ours["loss"][-1] - keras_fit["loss"][-1]) < 0.05
    assert abs(ours["val_loss"][-1] - keras_fit["val_loss"][-1]) < 0.05
    assert abs(ours_accuracy - keras_accuracy) <= 0.03
    assert ours_accuracy > 0.9


_FINGERPRINT = """
import keras
import sys
sys.path.insert(0, "tests")
from builders import mlp, prepared
from models import data, training
split = prepared("breast_cancer", "sigmoid", 0)
keras.utils.set_random_seed(0)
model = mlp(split, "sigmoid", hidden=(16, 8), dropout=0.1)
training.fit(model, split.x_train, split.y_train, epochs=3, batch_size=32,
             validation_data=(split.x_val, split.y_val), verbose=0)
print("WEIGHTS", data.fingerprint(*model.get_weights()))
"""


@pytest.mark.slow  # 18 s of subprocesses; the thread setting's speed-up is the benchmark's to show
def test_one_intra_op_thread_gives_the_same_numbers():
    """The CLI's `TF_NUM_INTRAOP_THREADS=1` changes the speed, not the training."""
    prints = []
    for threads in ("1", "2"):
        done = subprocess.run([sys.executable, "-c", _FINGERPRINT], capture_output=True, text=True,
                              cwd=ROOT, timeout=180, env={**os.environ, "TF_NUM_INTRAOP_THREADS": threads,
                                                "TF_CPP_MIN_LOG_LEVEL": "2"})
        assert done.returncode == 0, done.stderr[-2000:]
        prints.append([line for line in done.stdout.splitlines() if line.startswith("WEIGHTS")])
    assert len(prints[0]) == 1 and prints[0] == prints[1]


def test_cli_sets_one_intra_op_thread_unless_the_user_chose():
    code = ("import os\nfrom recipes.run import main\nmain(['--list'])\n"
            "print('THREADS', os.environ['TF_NUM_INTRAOP_THREADS'])\n")
    for given, expected in ((None, "1"), ("2", "2")):
        env = {k: v for k, v in os.environ.items() if k != "TF_NUM_INTRAOP_THREADS"}
        if given:
            env["TF_NUM_INTRAOP_THREADS"] = given
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              cwd=ROOT, timeout=60, env=env)
        assert f"THREADS {expected}" in done.stdout, done.stderr[-2000:]


def test_cli_hides_the_tensorflow_import_from_the_garbage_collector_once(tmp_path):
    """After TensorFlow starts, the CLI freezes what the import made, once a process."""
    code = ("import gc, sys\nfrom recipes.run import run_recipe\n"
            "args = ['--epochs', '1', '--no-export', '--output-dir', sys.argv[1]]\n"
            "run_recipe('logistic-unit', args, verbose=False)\n"
            "first = gc.get_freeze_count()\n"
            "run_recipe('logistic-unit', args, verbose=False)\n"
            "print('FROZEN', first, gc.get_freeze_count())\n")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True,
                          text=True, cwd=ROOT, timeout=120)
    first, second = map(int, done.stdout.split("FROZEN")[1].split())
    assert first > 100_000 and second == first, done.stderr[-2000:]


def test_epoch_function_traces_once_and_validates_in_the_same_call(digits):
    model = _model(digits, hidden=(8,))
    x = tf.constant(digits.x_train)
    y = tf.constant(digits.y_train)
    training._build_state(model, x, y)
    run_epoch = training._epoch_function(model, x, y, 100, (digits.x_val, digits.y_val))
    rng = np.random.default_rng(0)
    logs = [run_epoch(rng.permutation(len(digits.y_train))) for _ in range(3)]
    assert run_epoch.function.experimental_get_tracing_count() == 1
    assert set(logs[-1]) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert all(isinstance(v, float) for v in logs[-1].values())
    assert int(model.optimizer.iterations) == 3 * 11  # 1077 rows in batches of 100
    # the validation numbers are Keras's own for the weights at the epoch's end, validation rows only
    evaluated = model.evaluate(digits.x_val, digits.y_val, batch_size=8192, verbose=0, return_dict=True)
    assert logs[-1]["val_loss"] == pytest.approx(evaluated["loss"], abs=1e-6)
    assert logs[-1]["val_accuracy"] == pytest.approx(evaluated["accuracy"], abs=1e-6)
    assert logs[-1]["loss"] != pytest.approx(evaluated["loss"], abs=1e-3)  # training logs are their own


def test_callbacks_are_called_at_every_epoch_and_early_stopping_restores(digits):
    model = _model(digits, hidden=(8,), learning_rate=0.3)  # large steps: val loss stalls
    calls = []
    recorder = keras.callbacks.LambdaCallback(
        on_train_begin=lambda logs: calls.append("train_begin"),
        on_epoch_begin=lambda epoch, logs: calls.append(f"begin {epoch}"),
        on_epoch_end=lambda epoch, logs: calls.append(f"end {epoch} {sorted(logs)}"),
        on_train_end=lambda logs: calls.append("train_end"),
        on_train_batch_end=lambda batch, logs: calls.append("batch"),
    )
    stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True)
    progress = io.StringIO()
    history = training.fit(model, digits.x_train, digits.y_train, epochs=60, batch_size=32,
                           validation_data=(digits.x_val, digits.y_val), seed=0, verbose=0,
                           callbacks=[stop, recorder, training.EpochLogger(60, stream=progress)])
    epochs = len(history.history["loss"])
    assert epochs < 60 and stop.stopped_epoch == epochs - 1
    keys = ["accuracy", "loss", "val_accuracy", "val_loss"]
    assert calls == ["train_begin", *[c for e in range(epochs) for c in (f"begin {e}", f"end {e} {keys}")],
                     "train_end"]  # epoch hooks only: no per-batch calls
    assert progress.getvalue().count("\n") == epochs and f"Epoch {epochs}/60" in progress.getvalue()
    assert len(history.history["epoch_seconds"]) == epochs and history.steps_per_epoch == 34
    best = min(history.history["val_loss"])
    restored = model.evaluate(digits.x_val, digits.y_val, batch_size=8192, verbose=0, return_dict=True)
    assert restored["loss"] == pytest.approx(best, abs=1e-6)


def test_a_second_fit_continues_the_optimizer(digits):
    """As with `model.fit`, a second `fit` keeps Adam's moments: 1 + 1 epochs == 2 epochs."""
    weights = []
    for calls in ((0, 2), (0, 1, 2)):
        model = _model(digits, hidden=(8,))
        for start, end in zip(calls, calls[1:]):
            training.fit(model, digits.x_train, digits.y_train, epochs=end, initial_epoch=start,
                         batch_size=256, verbose=0)
        assert int(model.optimizer.iterations) == 2 * 5
        weights.append((model.get_weights(), len(model.optimizer.variables)))
    (once, n_once), (twice, n_twice) = weights
    assert n_once == n_twice
    for a, b in zip(once, twice):
        np.testing.assert_allclose(a, b, atol=1e-6)


@pytest.mark.parametrize("args", [["--list"], ["--help"], ["multiclass-softmax", "--help"]])
def test_cli_listing_and_help_import_nothing_heavy(args):
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "recipes.run", *args],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines()
                if line.startswith("import time:")}
    assert "recipes.core.registry" in imported  # the import log was read
    assert [m for m in HEAVY if m in imported] == []


_ON_GPU = bool(tf.config.list_logical_devices("GPU"))


def _executor(run_epoch):
    options = getattr(run_epoch.call_options, "options", None)
    return None if options is None else options.executor_type


@pytest.mark.skipif(_ON_GPU, reason="with a GPU every model keeps TensorFlow's defaults")
def test_small_models_train_on_the_lean_path_and_large_ones_do_not(digits):
    small, large = _model(digits, hidden=(64, 64)), _model(digits, hidden=(384, 384))
    assert small.count_params() < training.LEAN_PARAMETERS < large.count_params()
    assert training.is_lean(small) and not training.is_lean(large)
    x, y = tf.constant(digits.x_train), tf.constant(digits.y_train)
    executors = []
    for model in (small, large):
        training._build_state(model, x, y)
        run_epoch = training._epoch_function(model, x, y, 256)
        run_epoch(np.arange(len(digits.y_train)))
        executors.append(_executor(run_epoch))
    assert executors == [training.SINGLE_THREADED, None]


@pytest.mark.skipif(_ON_GPU, reason="with a GPU every model keeps TensorFlow's defaults")
def test_the_lean_path_computes_what_tensorflows_defaults_compute(digits, monkeypatch):
    """Grappler off and the single-threaded executor change the speed, not the training."""
    runs = []
    for limit in (training.LEAN_PARAMETERS, 0):  # 0: no model is lean
        monkeypatch.setattr(training, "LEAN_PARAMETERS", limit)
        model = _model(digits, hidden=(32, 32), seed=5)
        history = training.fit(model, digits.x_train, digits.y_train, epochs=4, batch_size=64,
                               validation_data=(digits.x_val, digits.y_val), seed=5, verbose=0)
        runs.append((history.history, model.get_weights()))
    (lean, lean_weights), (default, default_weights) = runs
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        assert lean[key] == pytest.approx(default[key], rel=1e-5), key
    for a, b in zip(lean_weights, default_weights):
        np.testing.assert_allclose(a, b, atol=1e-5)


_LOSS_SCALE = """
import keras
import sys
sys.path.insert(0, "tests")
from builders import mlp, prepared
from models import training
split = prepared("iris", "softmax", 0)
keras.utils.set_random_seed(0)
model = mlp(split, "softmax", hidden=(8,),
            optimizer=keras.optimizers.LossScaleOptimizer(keras.optimizers.Adam(0.01)))
history = training.fit(model, split.x_train, split.y_train, epochs=3, batch_size=16, verbose=0)
print("LOSSES", history.history["loss"])
"""


@pytest.mark.slow  # 9 s; which executor a step gets is a speed property, measured by scripts/bench.py
def test_a_conditional_in_the_step_keeps_the_default_executor():
    """The single-threaded executor hangs on an `If` inside the loop: such a step must not get it.

    `LossScaleOptimizer` (mixed precision) puts one in every step. Run in a child
    process with a time limit, so that a regression fails here instead of hanging.
    """
    done = subprocess.run([sys.executable, "-c", _LOSS_SCALE], capture_output=True, text=True,
                          cwd=ROOT, timeout=120, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert done.returncode == 0, done.stderr[-2000:]
    losses = [float(v) for v in done.stdout.split("LOSSES")[1].strip(" []\n").split(",")]
    assert len(losses) == 3 and losses[-1] < losses[0]
    plain = keras.optimizers.SGD(0.1)
    assert training._has_conditionals(_traced_step(keras.optimizers.LossScaleOptimizer(plain)))
    assert not training._has_conditionals(_traced_step(keras.optimizers.SGD(0.1)))


def _traced_step(optimizer):
    """The graph of a one-weight model's epoch, traced as `fit` traces it on the lean path."""
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer=optimizer, loss="mean_squared_error")
    x, y = tf.constant(np.ones((4, 2), np.float32)), tf.constant(np.ones((4, 1), np.float32))
    training._build_state(model, x, y)
    run_epoch = training._epoch_function(model, x, y, 2)
    with training.tracing(True):
        return run_epoch.function.get_concrete_function(tf.constant(np.arange(4))).graph


_OPTIMIZERS = {
    "sgd": lambda: keras.optimizers.SGD(0.05),
    "momentum": lambda: keras.optimizers.SGD(0.05, momentum=0.9),
    "nesterov": lambda: keras.optimizers.SGD(0.05, momentum=0.9, nesterov=True),
    "adagrad": lambda: keras.optimizers.Adagrad(0.05),
    "rmsprop": lambda: keras.optimizers.RMSprop(0.01),
    "adam": lambda: keras.optimizers.Adam(0.01),
}


@pytest.mark.parametrize("name", sorted(_OPTIMIZERS))
def test_updates_with_fewer_ops_train_bit_for_bit_as_keras(digits, monkeypatch, name):
    """`models.training.updates.fewer_ops` traces fewer ops; every weight and log is the same."""
    from models.training import updates

    runs = []
    for fewer in (True, False):
        if not fewer:  # Keras's own update_step, as without the module
            monkeypatch.setattr(training, "fewer_ops", lambda optimizer: contextlib.nullcontext())
        keras.utils.set_random_seed(3)
        model = mlp(digits, "softmax", hidden=(16, 8), dropout=0.1, optimizer=_OPTIMIZERS[name]())
        assert updates.supported(model.optimizer)
        history = training.fit(model, digits.x_train, digits.y_train, epochs=3, batch_size=128,
                               validation_data=(digits.x_val, digits.y_val), seed=3, verbose=0)
        state = model.get_weights() + [np.asarray(v) for v in model.optimizer.variables]
        runs.append((history.history, state))
    (ours, our_state), (theirs, their_state) = runs
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        assert ours[key] == theirs[key], key
    assert len(our_state) == len(their_state)
    for a, b in zip(our_state, their_state):
        np.testing.assert_array_equal(a, b)


def test_updates_with_fewer_ops_leave_other_optimizers_to_keras():
    from models.training import updates

    assert not updates.supported(keras.optimizers.Adam(amsgrad=True))
    assert not updates.supported(keras.optimizers.RMSprop(momentum=0.5))
    assert not updates.supported(keras.optimizers.AdamW())  # a subclass: its own update_step
    assert not updates.supported(keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD()))
    assert not updates.supported(keras.optimizers.Adam(gradient_accumulation_steps=2))
    assert not updates.supported(keras.optimizers.SGD(use_ema=True))
    optimizer = keras.optimizers.Adam()
    keras_update = optimizer._backend_update_step
    with updates.fewer_ops(optimizer):
        assert optimizer._backend_update_step != keras_update
    assert optimizer._backend_update_step == keras_update  # the instance is as it was
    count = {}
    for fewer in (True, False):
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8), keras.layers.Dense(1)])
        model.compile(optimizer=keras.optimizers.Adam(), loss="mean_squared_error")
        x, y = tf.constant(np.ones((8, 4), np.float32)), tf.constant(np.ones((8, 1), np.float32))
        training._build_state(model, x, y)
        run_epoch = training._epoch_function(model, x, y, 2)
        context = updates.fewer_ops(model.optimizer) if fewer else contextlib.nullcontext()
        with context:
            graph = run_epoch.function.get_concrete_function(tf.constant(np.arange(8))).graph
        count[fewer] = sum(len(f.node_def) for f in graph.as_graph_def().library.function)
    assert count[True] < 0.8 * count[False]  # the loop body: Adam's ops were most of it


def test_evaluate_gives_what_keras_evaluate_gives_on_one_batch(digits):
    model = _model(digits, hidden=(16,))
    training.fit(model, digits.x_train, digits.y_train, epochs=2, batch_size=64, verbose=0)
    ours = training.evaluate(model, digits.x_test, digits.y_test)
    keras_ = model.evaluate(digits.x_test, digits.y_test, batch_size=len(digits.y_test), verbose=0,
                            return_dict=True)
    assert set(ours) == set(keras_) == {"loss", "accuracy"}
    for key in ours:
        assert ours[key] == pytest.approx(keras_[key], rel=1e-6), key


def _twin(digits, activation="relu", learning_rate=0.01, name="net"):
    keras.utils.set_random_seed(4)
    network = keras.Sequential([keras.layers.Dense(16, activation=activation, name="hidden_1"),
                                keras.layers.Dropout(0.1, name="dropout_1"),
                                keras.layers.Dense(10, activation="softmax", name="output")],
                               name=name)
    model = digits.with_preprocessing(network)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def _fit_twin(model, digits):
    history = training.fit(model, digits.x_train, digits.y_train, epochs=3, batch_size=64,
                           validation_data=(digits.x_val, digits.y_val), seed=4, verbose=0)
    return history.history, model.get_weights()


def test_twins_of_one_architecture_trace_once_and_train_as_if_each_traced(digits, monkeypatch):
    """`models.training.twins`: the second and third fit run the first one's traced epoch."""
    from models.training import twins

    twins.forget()
    monkeypatch.setattr(twins, "KEPT", 0)  # nothing kept: every fit traces its own epoch
    alone = [_fit_twin(_twin(digits, name=f"net_{i}"), digits) for i in range(3)]
    monkeypatch.setattr(twins, "KEPT", 4)
    traces = []
    original = training.Template

    def counted(*args, **kwargs):
        traces.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(training, "Template", counted)
    shared = [_fit_twin(_twin(digits, name=f"net_{i}"), digits) for i in range(3)]
    assert len(traces) == 1  # one trace for the three
    for (ours, our_weights), (theirs, their_weights) in zip(shared, alone):
        for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
            np.testing.assert_allclose(ours[key], theirs[key], rtol=0, atol=1e-6)
            assert ours[key] == theirs[key], key  # in fact bit for bit
        for a, b in zip(our_weights, their_weights):
            np.testing.assert_array_equal(a, b)
    twins.forget()


@pytest.mark.parametrize("change", [{"activation": "tanh"}, {"learning_rate": 0.02}])
def test_models_that_differ_do_not_share_a_trace(digits, change):
    from models.training import twins

    twins.forget()
    first, second = _twin(digits), _twin(digits, **change)
    x, y = tf.constant(digits.x_train), tf.constant(digits.y_train)
    for model in (first, second):
        training._build_state(model, x, y)
        run_epoch = training._epoch_function(model, x, y, 64)
        run_epoch(np.arange(len(digits.y_train)))
        assert not getattr(run_epoch, "shared", False)
    third = _twin(digits, **change)  # a twin of the second one
    training._build_state(third, x, y)
    assert getattr(training._epoch_function(third, x, y, 64), "shared", False)
    twins.forget()


def test_a_twin_finds_its_template_among_others_of_the_same_shapes(digits):
    """`regularization`'s plain net is followed by an L2 one (same variables), then a plain twin."""
    from models.training import twins

    twins.forget()
    x, y = tf.constant(digits.x_train), tf.constant(digits.y_train)
    shared = []
    for learning_rate in (0.01, 0.02, 0.01):
        model = _twin(digits, learning_rate=learning_rate)
        training._build_state(model, x, y)
        run_epoch = training._epoch_function(model, x, y, 64)
        run_epoch(np.arange(len(digits.y_train)))
        shared.append(getattr(run_epoch, "shared", False))
    assert shared == [False, False, True]
    twins.forget()


def test_fits_in_threads_take_turns_to_trace(digits, monkeypatch):
    """`Run.fit_each`'s threads trace one at a time (a trace holds the GIL: two at once gain nothing)."""
    import threading
    import time

    from models.training import twins

    twins.forget()
    x, y = tf.constant(digits.x_train), tf.constant(digits.y_train)
    models = [_twin(digits), _twin(digits, activation="tanh")]  # no twins: each traces
    epochs = []
    for model in models:
        training._build_state(model, x, y)
        epochs.append(training._epoch_function(model, x, y, 64))
    traced, tracing = [], training.tracing

    @contextlib.contextmanager
    def timed(lean):
        started = time.perf_counter()
        with tracing(lean):
            yield
        traced.append((started, time.perf_counter()))

    monkeypatch.setattr(training, "tracing", timed)
    start = threading.Barrier(len(epochs))

    def first_epoch(run_epoch):
        start.wait()  # both ask to trace at once
        run_epoch(np.arange(len(digits.y_train)))

    threads = [threading.Thread(target=first_epoch, args=(e,)) for e in epochs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(traced) == 2, traced  # each thread traced its own epoch
    (_, first_ends), (second_starts, _) = sorted(traced)
    assert first_ends <= second_starts, traced  # one after the other, not overlapping
    twins.forget()
