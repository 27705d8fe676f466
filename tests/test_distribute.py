"""Scaling out: `--strategy mirrored` and `--strategy multi-worker`, with real processes.

The two-device and two-worker runs happen in subprocesses: logical CPU devices
and MultiWorkerMirroredStrategy must be set up before TensorFlow starts, which
the rest of the suite has already done in this process.
"""

import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from models.training import distribute

REPO = Path(__file__).resolve().parents[1]
TIMEOUT = 240  # seconds the subprocesses may take before the test kills them and fails


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    env.update(TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(REPO), CUDA_VISIBLE_DEVICES="", **extra)
    return env


# TF_CONFIG and the chief ----------------------------------------------------------------


@pytest.mark.parametrize("text, problem", [
    (None, "TF_CONFIG is not set"),
    ("", "TF_CONFIG is not set"),
    ("{cluster: 1}", "not valid JSON"),
    ('["worker"]', "no `cluster` object"),
    ('{"cluster": {}, "task": {"type": "worker", "index": 0}}', "lists no `worker`"),
    ('{"cluster": {"ps": ["a:1"], "worker": ["b:1"]}, "task": {"type": "worker", "index": 0}}',
     "task types ['ps']"),
    ('{"cluster": {"worker": ["localhost"]}, "task": {"type": "worker", "index": 0}}',
     "list of \"host:port\" strings"),
    ('{"cluster": {"worker": ["a:1", "b:1"]}}', "no `task`"),
    ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "chief", "index": 0}}',
     "task type 'chief' is not in the cluster"),
    ('{"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": 2}}',
     "integer in [0, 1]"),
])
def test_bad_tf_config_names_the_problem_and_shows_a_valid_one(text, problem):
    environ = {} if text is None else {"TF_CONFIG": text}
    with pytest.raises(distribute.DistributeError, match=re.escape(problem)) as caught:
        distribute.read_tf_config(environ)
    message = str(caught.value)
    assert distribute.TF_CONFIG_EXAMPLE in message
    assert json.loads(distribute.TF_CONFIG_EXAMPLE)["task"] == {"type": "worker", "index": 0}
    distribute.read_tf_config({"TF_CONFIG": distribute.TF_CONFIG_EXAMPLE})  # the example is valid


def test_the_chief_is_the_chief_task_else_worker_zero():
    def chief(cluster, kind, index):
        task = {"type": kind, "index": index}
        environ = {"TF_CONFIG": json.dumps({"cluster": cluster, "task": task})}
        return distribute.is_chief("multi-worker", environ)

    workers = {"worker": ["a:1", "b:1"]}
    assert chief(workers, "worker", 0) and not chief(workers, "worker", 1)
    with_chief = {"chief": ["c:1"], **workers}
    assert chief(with_chief, "chief", 0)
    assert not chief(with_chief, "worker", 0) and not chief(with_chief, "worker", 1)
    assert distribute.is_chief("auto", {}) and distribute.is_chief("mirrored", {})
    with pytest.raises(ValueError, match="`strategy` must be one of auto, mirrored, multi-worker"):
        distribute.is_chief("parameter-server", {})


def test_multi_worker_without_tf_config_is_a_clear_run_error(cli, monkeypatch, output_dir):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    status, out, err = cli("binary-sigmoid", "--strategy", "multi-worker", "--epochs", "1",
                           "--output-dir", output_dir)
    assert status == 1, err
    assert "TF_CONFIG is not set" in err and distribute.TF_CONFIG_EXAMPLE in err
    assert "Traceback" not in err and not output_dir.exists()

    monkeypatch.setenv("TF_CONFIG", '{"cluster": {"worker": ["a:1"]}, "task": {"index": 0}}')
    status, out, err = cli("binary-sigmoid", "--strategy", "multi-worker", "--epochs", "1",
                           "--output-dir", output_dir)
    assert status == 1 and "no `task` with a `type` and an `index`" in err


def test_multi_worker_after_tensorflow_started_says_to_run_from_the_command_line(
        cli, monkeypatch, output_dir):
    import tensorflow as tf

    tf.constant(1.0) + 1  # TensorFlow has started in this process, as in the rest of the suite
    port = _free_ports(1)[0]
    monkeypatch.setenv("TF_CONFIG", json.dumps(
        {"cluster": {"worker": [f"localhost:{port}"]}, "task": {"type": "worker", "index": 0}}))
    status, out, err = cli("binary-sigmoid", "--strategy", "multi-worker", "--epochs", "1",
                           "--output-dir", output_dir)
    assert status == 1
    assert "Collective ops must be configured at program startup" in err
    assert "first TensorFlow work of its process" in err and not output_dir.exists()


def test_device_gpu_without_a_gpu_is_a_clear_run_error(cli, output_dir):
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        pytest.skip("this machine has a GPU")
    status, out, err = cli("binary-sigmoid", "--device", "gpu", "--epochs", "1",
                           "--output-dir", output_dir)
    assert status == 1
    assert "TensorFlow sees no GPU" in err and "--device cpu" in err and "Traceback" not in err


# The distributed loop, in this process ------------------------------------------------


def _fit_both(mixed=False, learning_rate=0.01, patience=None, epochs=3):
    """Trains the same model with `training.fit` and with `distribute.fit` (default strategy)."""
    import keras
    import tensorflow as tf

    from builders import mlp, prepared
    from models import training

    split = prepared("breast_cancer", "sigmoid", seed=42)
    results = []
    for fit in (training.fit, distribute.fit):
        keras.utils.set_random_seed(42)
        with distribute.precision_policy(mixed):
            model = mlp(split, "sigmoid", hidden=(16, 8), learning_rate=learning_rate)
        callbacks = [keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=patience, restore_best_weights=True)] if patience else []
        extra = {"strategy": tf.distribute.get_strategy()} if fit is distribute.fit else {}
        history = fit(model, split.x_train, split.y_train, epochs=epochs, batch_size=32,
                      validation_data=(split.x_val, split.y_val), callbacks=callbacks, seed=42,
                      verbose=0, **extra)
        results.append((model, history))
    return results


def test_distributed_loop_follows_the_fast_loop_step_for_step():
    from models import data

    (fast, fast_history), (dist, dist_history) = _fit_both()
    assert dist_history.steps_per_epoch == fast_history.steps_per_epoch == 11
    assert len(dist_history.history["epoch_seconds"]) == 3
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        assert dist_history.history[key] == pytest.approx(fast_history.history[key], rel=1e-6), key
    assert data.fingerprint(*dist.get_weights()) == data.fingerprint(*fast.get_weights())


def test_distributed_loop_keeps_early_stopping_and_the_best_weights():
    from models import data

    (fast, fast_history), (dist, dist_history) = _fit_both(learning_rate=0.3, patience=1, epochs=12)
    epochs_run = len(dist_history.history["loss"])
    assert epochs_run == len(fast_history.history["loss"]) < 12  # stopped early, at the same epoch
    assert dist_history.history["val_loss"] == pytest.approx(
        fast_history.history["val_loss"], rel=1e-6)
    assert data.fingerprint(*dist.get_weights()) == data.fingerprint(*fast.get_weights())


def test_mixed_precision_policy_keeps_outputs_float32_and_scales_the_loss():
    import keras

    (fast, fast_history), (dist, dist_history) = _fit_both(mixed=True, epochs=2)
    for model in (fast, dist):
        network = model.layers[2]  # Input, Normalization, the Sequential network, float32 cast
        assert network.layers[0].compute_dtype == "float16"
        assert model.layers[-1].compute_dtype == "float32"
        assert model.outputs[0].dtype == "float32"
        assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    assert dist_history.history["loss"] == pytest.approx(fast_history.history["loss"], rel=1e-6)
    assert keras.config.dtype_policy().name == "float32"  # restored for what runs next


def test_mixed_precision_on_the_cpu_is_ignored_and_says_so(run_recipe):
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        pytest.skip("this machine has a GPU")
    status, report, out, err = run_recipe("binary-sigmoid", "--epochs", "1", "--no-export",
                                          "--mixed-precision")
    assert status == 0, err
    assert "--mixed-precision ignored" in out and "CPU" in out
    assert "distribution" not in report["details"]  # --strategy auto: one device


# Two devices, two workers: real processes -----------------------------------------------

# 341 training rows in batches of 20: the last batch of each epoch has one row, so one
# replica's share is uneven (two workers) or empty (two devices).
RUN = ["binary-sigmoid", "--epochs", "2", "--batch-size", "20"]

MIRRORED_SCRIPT = """
import sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from recipes.run import main
raise SystemExit(main(sys.argv[1:]))
"""


@pytest.fixture(scope="module")
def single_device(tmp_path_factory):
    """The report of the same run on one device (`--strategy auto`), in this process."""
    from recipes.run import main

    report = tmp_path_factory.mktemp("single") / "report.json"
    assert main([*RUN, "--no-export", "--report", str(report)]) == 0
    return json.loads(report.read_text())


def test_mirrored_over_two_cpu_devices_matches_one_device(tmp_path, single_device):
    report = tmp_path / "mirrored.json"
    done = subprocess.run(
        [sys.executable, "-c", MIRRORED_SCRIPT, *RUN, "--strategy", "mirrored", "--no-export",
         "--report", str(report)], cwd=REPO, env=_env(), capture_output=True, text=True,
        timeout=TIMEOUT,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    mirrored, single = json.loads(report.read_text()), single_device
    where = mirrored["details"]["distribution"]
    assert (where["strategy"], where["replicas"], where["workers"]) == ("MirroredStrategy", 2, 1)
    assert mirrored["details"]["steps_per_epoch"] == single["details"]["steps_per_epoch"] == 18
    for key in ("final_loss", "final_val_loss"):
        assert mirrored["details"][key] == pytest.approx(single["details"][key], rel=1e-5), key
    assert mirrored["metrics"]["accuracy"] == single["metrics"]["accuracy"]
    assert mirrored["metrics"]["auc"] == pytest.approx(single["metrics"]["auc"], abs=1e-3)
    assert "Strategy: MirroredStrategy, 2 replica(s)" in done.stdout


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("localhost", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def test_two_workers_train_identical_weights_and_export_once(tmp_path, output_dir, single_device):
    import keras

    from models import data
    from models.export import layout

    ports = _free_ports(2)
    cluster = {"worker": [f"localhost:{p}" for p in ports]}
    processes, logs = [], []
    try:
        for index in range(2):
            folder = tmp_path / f"worker{index}"
            folder.mkdir()
            tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
            log = (folder.parent / f"worker{index}.log").open("w")
            logs.append(log)
            processes.append(subprocess.Popen(
                [sys.executable, "-m", "recipes.run", *RUN, "--strategy", "multi-worker",
                 "--output-dir", str(output_dir), "--report", str(folder / "report.json")],
                cwd=REPO, env=_env(TF_CONFIG=tf_config), stdout=log, stderr=subprocess.STDOUT,
            ))
        deadline = time.monotonic() + TIMEOUT
        statuses = [p.wait(timeout=max(1.0, deadline - time.monotonic())) for p in processes]
    finally:
        for p in processes:
            if p.poll() is None:
                p.kill()
                p.wait()
        for log in logs:
            log.close()
    tails = "\n".join((tmp_path / f"worker{i}.log").read_text()[-2000:] for i in range(2))
    assert statuses == [0, 0], tails

    chief, worker = (json.loads((tmp_path / f"worker{i}" / "report.json").read_text())
                     for i in range(2))
    for i, report in enumerate((chief, worker)):
        where = report["details"]["distribution"]
        assert where["strategy"] == "MultiWorkerMirroredStrategy"
        assert (where["replicas"], where["workers"], where["task"]) == (2, 2, f"worker:{i}")
        assert where["chief"] is (i == 0)
    assert chief["details"]["distribution"]["weights_sha256"] == \
        worker["details"]["distribution"]["weights_sha256"]

    # Exactly one version, written by the chief; the other worker wrote its report only.
    root = output_dir / "binary-sigmoid"
    assert [p.name for p in output_dir.iterdir()] == ["binary-sigmoid"]
    assert layout.versions(root) == [1] and [p.name for p in root.iterdir()] == ["1"]
    assert chief["export"] == str(root / "1") and worker["export"] is None
    assert sorted(p.name for p in (tmp_path / "worker1").iterdir()) == ["report.json"]
    assert "report-history.png" in [p.name for p in (tmp_path / "worker0").iterdir()]
    exported = keras.models.load_model(root / "1" / "model.keras")
    weights = chief["details"]["distribution"]["weights_sha256"]
    assert data.fingerprint(*exported.get_weights()) == weights

    # Each worker read its own half of every global batch: the loss is the one-device loss.
    for key in ("final_loss", "final_val_loss"):
        assert chief["details"][key] == pytest.approx(single_device["details"][key], rel=1e-5), key
