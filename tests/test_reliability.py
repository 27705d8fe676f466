"""Reliability: resume after a kill, whole-or-nothing exports, divergence, determinism.

The kill tests run the real command line in child processes and kill them
with real signals at moments read from their output and from the export
folder, never through a test-only hook. Every child has a timeout and is
killed in `finally`.
"""

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from models.export import layout
from models.training import checkpoints

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONUNBUFFERED": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
TIMEOUT = 240


class Child:
    """`python -m recipes.run ARGS` in a child process; its output goes to `log`."""

    def __init__(self, args, log):
        self.log = Path(log)
        self._out = open(self.log, "w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "recipes.run", *map(str, args)], cwd=REPO, env=ENV,
            stdout=self._out, stderr=subprocess.STDOUT,
        )

    @property
    def output(self):
        return self.log.read_text()

    def wait_for(self, ready, timeout=TIMEOUT, every=0.005):
        """Polls `ready()` until it holds; `False` if the child ended or time ran out first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ready():
                return True
            if self.process.poll() is not None:
                return ready()
            time.sleep(every)
        return False

    def signal(self, signum):
        """Sends `signum` and waits for (and reaps) the child; returns its exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signum)
        return self.process.wait(timeout=TIMEOUT)

    def close(self):
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=TIMEOUT)
        self._out.close()


@contextlib.contextmanager
def child(args, log):
    running = Child(args, log)
    try:
        yield running
    finally:
        running.close()


def _run(args):
    """Runs the command line to its end in a child process; `(status, output)`."""
    result = subprocess.run(
        [sys.executable, "-m", "recipes.run", *map(str, args)], cwd=REPO, env=ENV,
        capture_output=True, text=True, timeout=TIMEOUT,
    )
    return result.returncode, result.stdout + result.stderr


def _epochs_shown(output):
    return [int(n) for n in re.findall(r"^Epoch (\d+)/\d+ ", output, flags=re.M)]


def _weights(folder):
    import keras

    model = keras.saving.load_model(Path(folder) / "model.keras", safe_mode=True)
    return model.get_weights()


def _same_weights(a, b):
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))


def _whole_versions(model_root):
    """Checks that every version folder is complete; returns the version numbers."""
    found = layout.versions(model_root)
    for version in found:
        folder = Path(model_root) / str(version)
        for item in ("saved_model.pb", "variables/variables.index", "model.keras",
                     "metadata.json", "history.csv"):
            assert (folder / item).is_file(), f"{folder} lacks {item}"
        meta = json.loads((folder / "metadata.json").read_text())
        assert meta["version"] == version
        with zipfile.ZipFile(folder / "model.keras") as archive:
            assert archive.testzip() is None
    return found


def _checkpoint_files(output_dir):
    return list(Path(output_dir).glob(f"{checkpoints.RUNS}/*/{checkpoints.FILE}"))


# Resume ----------------------------------------------------------------------------------


def test_killed_then_interrupted_run_resumes_and_ends_like_an_uninterrupted_one(tmp_path, cli):
    epochs = 30
    out = tmp_path / "models"
    # 30 epochs of about 0.07 s: the Ctrl-C must land while the resumed run still trains,
    # on a loaded 2-core machine too (with 12, the resumed run could end before it).
    args = ["binary-sigmoid", "--batch-size", "1", "--epochs", str(epochs), "--output-dir", out]

    # 1. kill -9 in the middle of training
    with child(args, tmp_path / "a.log") as a:
        assert a.wait_for(lambda: f"Epoch 4/{epochs}" in a.output), a.output
        assert a.signal(signal.SIGKILL) == -signal.SIGKILL
    assert len(_checkpoint_files(out)) == 1
    assert layout.versions(out / "binary-sigmoid") == []

    # 2. the same command resumes; Ctrl-C (SIGINT) after one more epoch
    with child(args, tmp_path / "b.log") as b:
        def epochs_after_resuming():
            return _epochs_shown(b.output.partition("Resuming")[2])

        assert b.wait_for(lambda: len(epochs_after_resuming()) >= 1), b.output
        assert b.signal(signal.SIGINT) == 130
        resumed_b = int(re.search(rf"Resuming from epoch (\d+) of {epochs}", b.output)[1])
        assert 1 <= resumed_b < epochs
        assert _epochs_shown(b.output)[0] == resumed_b + 1
        saved = re.search(r"Interrupted: (\d+) epoch\(s\) are saved in (\S+);", b.output)
        assert saved and int(saved[1]) > resumed_b, b.output
        assert "Traceback" not in b.output

    # 3. the same command again: resumes where the Ctrl-C left it, finishes, exports
    status, output = _run([*args, "--report", tmp_path / "c.json"])
    assert status == 0, output
    resumed_c = int(re.search(rf"Resuming from epoch (\d+) of {epochs}", output)[1])
    assert resumed_c == int(saved[1])
    shown = _epochs_shown(output)
    assert shown[0] == resumed_c + 1 and shown == list(range(resumed_c + 1, shown[-1] + 1))
    assert _whole_versions(out / "binary-sigmoid") == [1]
    assert not (out / checkpoints.RUNS).exists()  # removed once the run completed
    resumed = json.loads((tmp_path / "c.json").read_text())
    assert resumed["details"]["resumed_from_epoch"] == resumed_c

    # 4. the same training without interruptions (in this process): the same numbers
    status, _, err = cli(*args[:-1], tmp_path / "plain", "--report", tmp_path / "plain.json")
    assert status == 0, err
    plain = json.loads((tmp_path / "plain.json").read_text())
    assert resumed["metrics"] == plain["metrics"]
    assert resumed["details"]["epochs_run"] == plain["details"]["epochs_run"]
    assert resumed["details"]["final_loss"] == plain["details"]["final_loss"]
    assert _same_weights(_weights(out / "binary-sigmoid" / "1"),
                         _weights(tmp_path / "plain" / "binary-sigmoid" / "1"))


def test_checkpoint_resumes_fit_exactly_with_dropout_adam_and_early_stopping(tmp_path):
    import keras

    from builders import mlp, prepared
    from models import training

    split = prepared("iris", "softmax", seed=3)

    def train(epochs, callbacks=(), initial_epoch=0, stopper=None):
        keras.utils.set_random_seed(3)
        model = mlp(split, "softmax", hidden=(8, 8), dropout=0.3, learning_rate=0.02)
        stopper = stopper or keras.callbacks.EarlyStopping(patience=50, restore_best_weights=True)
        history = training.fit(
            model, split.x_train, split.y_train, epochs=epochs, batch_size=16, seed=3, verbose=0,
            validation_data=(split.x_val, split.y_val), callbacks=[stopper, *callbacks],
            initial_epoch=initial_epoch,
        )
        return model, history

    class Interrupt(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 4:
                raise KeyboardInterrupt

    plain, plain_history = train(10)

    folder = tmp_path / "run"
    stopper = keras.callbacks.EarlyStopping(patience=50, restore_best_weights=True)
    first = checkpoints.Checkpoint.open(folder, early_stopping=stopper, every=0)
    with pytest.raises(KeyboardInterrupt):
        train(10, [first, Interrupt()], stopper=stopper)
    assert first.epoch_saved == 5

    stopper = keras.callbacks.EarlyStopping(patience=50, restore_best_weights=True)
    second = checkpoints.Checkpoint.open(folder, early_stopping=stopper, every=0)
    assert second.epoch == 5 and second.resume_epoch(10) == 5
    resumed, history = train(10, [second], initial_epoch=5, stopper=stopper)
    assert _same_weights(resumed.get_weights(), plain.get_weights())
    merged = second.merge(history.history)
    assert merged["loss"] == plain_history.history["loss"]
    assert merged["val_loss"] == plain_history.history["val_loss"]

    # training had ended: the next open resumes with no epoch left, to the same weights
    stopper = keras.callbacks.EarlyStopping(patience=50, restore_best_weights=True)
    third = checkpoints.Checkpoint.open(folder, early_stopping=stopper, every=0)
    assert third.saved["done"] and third.resume_epoch(10) == 10
    again, _ = train(10, [third], initial_epoch=10, stopper=stopper)
    assert _same_weights(again.get_weights(), plain.get_weights())

    third.remove()
    assert not folder.exists()


SAVING_CHILD = """
import sys, keras, numpy as np
from models import training
from models.training import checkpoints
keras.utils.set_random_seed(0)
x = np.random.default_rng(0).normal(size=(64, 256)).astype("float32")
y = (x[:, 0] > 0).astype("int64")
model = keras.Sequential([keras.Input((256,)), keras.layers.Dense(512, activation="relu"),
                          keras.layers.Dense(512, activation="relu"),
                          keras.layers.Dense(1, activation="sigmoid")])
model.compile(optimizer="adam", loss="binary_crossentropy")
checkpoint = checkpoints.Checkpoint.open(sys.argv[1], every=0)  # a 4 MB file every epoch


class Shown(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        print(f"saving {epoch + 1}", flush=True)


training.fit(model, x, y, epochs=100_000, batch_size=64, verbose=0, callbacks=[checkpoint, Shown()])
"""


def test_a_kill_while_the_background_thread_writes_leaves_a_whole_checkpoint(tmp_path):
    # Every epoch saves a 4 MB checkpoint from the writer thread while the next epoch
    # trains; kill -9 lands at some moment of that, at two different delays.
    folder = tmp_path / "run"
    for delay in (0.0, 0.17):
        log = tmp_path / f"saving-{delay}.log"
        with open(log, "w") as out:
            process = subprocess.Popen([sys.executable, "-c", SAVING_CHILD, str(folder)], cwd=REPO,
                                       env=ENV, stdout=out, stderr=subprocess.STDOUT)
            try:
                deadline = time.monotonic() + TIMEOUT
                while "saving 10" not in log.read_text() and time.monotonic() < deadline:
                    assert process.poll() is None, log.read_text()
                    time.sleep(0.01)
                time.sleep(delay)
                process.kill()
            finally:
                process.kill()
                process.wait(timeout=TIMEOUT)
        saved = checkpoints.Checkpoint.open(folder)
        assert saved.problem is None and saved.epoch >= 9, (saved.problem, log.read_text()[-500:])
        assert saved.saved["variables"] == {"model": 6, "optimizer": 14}
        with np.load(folder / checkpoints.FILE) as arrays:
            assert len(arrays.files) == 1 + 6 + 14  # the state and every variable, whole
            assert arrays["model_0"].shape == (256, 512)
        saved.release()


def test_restart_and_unreadable_checkpoints_start_afresh(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / checkpoints.FILE).write_bytes(b"PK\x03\x04 half a zip file")
    damaged = checkpoints.Checkpoint.open(folder)
    assert damaged.saved is None and damaged.epoch == 0
    assert "could not be read" in damaged.problem
    fresh = checkpoints.Checkpoint.open(folder, restart=True)
    assert fresh.saved is None and fresh.problem is None
    assert not (folder / checkpoints.FILE).exists()


def test_a_live_process_keeps_its_run_folder_a_dead_ones_is_taken_over(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        owner = {"pid": sleeper.pid, "host": layout.host()}
        (folder / checkpoints.OWNER).write_text(json.dumps(owner))
        with pytest.raises(checkpoints.CheckpointBusy, match=f"process {sleeper.pid} is training"):
            checkpoints.Checkpoint.open(folder)
    finally:
        sleeper.kill()
        sleeper.wait(timeout=TIMEOUT)
    checkpoint = checkpoints.Checkpoint.open(folder)  # the owner is dead now
    assert json.loads((folder / checkpoints.OWNER).read_text())["pid"] == os.getpid()
    checkpoint.release()
    assert not (folder / checkpoints.OWNER).exists()


def test_fit_and_checkpoint_check_their_arguments():
    import keras

    from models import training

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy")
    x, y = np.zeros((4, 2), np.float32), np.array([0, 1, 0, 1])
    with pytest.raises(ValueError, match=r"`initial_epoch` must be an integer in \[0, epochs=3\]. "
                                         r"Received: initial_epoch=4"):
        training.fit(model, x, y, epochs=3, initial_epoch=4, verbose=0)
    with pytest.raises(ValueError, match="`every` must be a number of seconds >= 0. "
                                         "Received: every=-1"):
        checkpoints.Checkpoint("somewhere", every=-1)
    with pytest.raises(ValueError, match="`pid` must be an integer > 0. Received: pid=0"):
        layout.alive(0)


# Whole-or-nothing exports ----------------------------------------------------------------


def test_kills_around_export_leave_only_whole_version_folders(tmp_path, cli):
    out = tmp_path / "models"
    root = out / "multiclass-softmax"
    args = ["multiclass-softmax", "--epochs", "2", "--output-dir", out]

    def staging():
        return set(root.glob(f"{layout.STAGING_PREFIX}*"))

    killed_mid_export = 0
    for i, delay in enumerate((0.0, 0.5, 1.5)):  # into the SavedModel, model.keras/ONNX, the end
        left_before, resumable = staging(), bool(_checkpoint_files(out))
        with child(args, tmp_path / f"kill-{i}.log") as run:
            assert run.wait_for(lambda: staging() - left_before), run.output  # its own export
            time.sleep(delay)
            run.signal(signal.SIGKILL)
        assert not left_before & staging()  # an earlier kill's folder went at this export
        _whole_versions(root)
        killed_mid_export += bool(staging())
        # a run killed before it completed left its finished training: the next one resumes it
        assert ("Resuming from epoch 2 of 2 (training had ended" in run.output) == resumable
    assert killed_mid_export >= 1  # at least the kill at once landed inside the export

    had_checkpoint = bool(_checkpoint_files(out))
    before = layout.versions(root)
    status, output, err = cli(*args)
    assert status == 0, err
    assert ("Resuming from epoch 2 of 2 (training had ended" in output) == had_checkpoint
    assert not list(root.glob(f"{layout.STAGING_PREFIX}*"))  # the killed runs' leftovers are gone
    after = _whole_versions(root)
    assert after == before + [len(before) + 1] == list(range(1, len(after) + 1))


def test_stale_staging_folders_go_a_live_runs_stays(tmp_path):
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait(timeout=TIMEOUT)
    host = layout.host()
    folders = {
        "dead": f"{layout.STAGING_PREFIX}{host}-{finished.pid}-0a1b2c3d",
        "dead, older name form": f"{layout.STAGING_PREFIX}{finished.pid}-0a1b2c3d",
        "live": f"{layout.STAGING_PREFIX}{host}-{os.getpid()}-0a1b2c3d",
        "other host, fresh": f"{layout.STAGING_PREFIX}elsewhere-{finished.pid}-0a1b2c3d",
        "other host, two days old": f"{layout.STAGING_PREFIX}far-away-{finished.pid}-99aa99aa",
        "live but two days old": f"{layout.STAGING_PREFIX}{host}-{os.getpid()}-99aa99aa",
    }
    for name in folders.values():
        (tmp_path / name).mkdir()
        (tmp_path / name / "saved_model.pb").write_bytes(b"half")
    (tmp_path / "1").mkdir()
    two_days_ago = time.time() - 2 * 24 * 3600
    for key in ("other host, two days old", "live but two days old"):
        os.utime(tmp_path / folders[key], (two_days_ago, two_days_ago))

    removed = {p.name for p in layout.remove_stale_staging(tmp_path)}
    gone = {"dead", "dead, older name form", "other host, two days old", "live but two days old"}
    assert removed == {folders[k] for k in gone}
    left = {p.name for p in tmp_path.iterdir()}
    assert left == {"1", folders["live"], folders["other host, fresh"]}


# Divergence and bad data -----------------------------------------------------------------


def test_a_diverging_learning_rate_stops_at_that_epoch_exits_1_and_exports_nothing(tmp_path, cli):
    out = tmp_path / "models"
    status, output, err = cli("leaky-relu-regression", "--batch-size", "full", "--optimizer", "sgd",
                              "--learning-rate", "1", "--output-dir", out)
    assert status == 1
    found = re.search(r"Training diverged at epoch (\d+) of 100: the loss became (nan|inf)", err)
    assert found, err
    assert "learning rate 1)" in err and "--learning-rate" in err and "Nothing was exported" in err
    stopped = int(found[1])
    assert 1 < stopped < 100
    assert _epochs_shown(output) == list(range(1, stopped + 1))  # stopped at that epoch
    assert "Traceback" not in err and err.count("\n") == 1
    assert layout.versions(out / "leaky-relu-regression") == []
    assert not (out / checkpoints.RUNS).exists()  # resuming would only diverge again


@pytest.mark.parametrize("cell", ["inf", "-1e39"])  # NaN and "" are missing values (test_tables)
def test_csv_with_infinite_values_is_refused_before_training(tmp_path, cli, cell):
    rows = [f"{i * 0.5},{(i * 7) % 5},{'yes' if i % 2 else 'no'}" for i in range(40)]
    rows[17] = f"{cell},1,yes"
    table = tmp_path / "table.csv"
    table.write_text("a,b,label\n" + "\n".join(rows) + "\n")
    out = tmp_path / "models"
    status, output, err = cli("binary-sigmoid", "--data", table, "--target", "label",
                              "--epochs", "2", "--output-dir", out)
    assert status == 1
    assert "'a'" in err and "row 18" in err and "Nothing was trained or exported" in err
    assert _epochs_shown(output) == [] and not out.exists()


def test_bundled_path_refuses_nan_and_infinite_values_too():
    from models import data
    from recipes.core import workflow
    from recipes.core.errors import RunError

    iris = data.load("iris")
    workflow._check_finite(iris)  # the real data are finite
    x = iris.x.copy()
    x[3, 1], x[7, 2] = np.nan, np.inf
    broken = data.Dataset(**{**iris.__dict__, "x": x})
    with pytest.raises(RunError, match="holds 2 NaN or infinite feature value"):
        workflow._check_finite(broken)


# Determinism and safe loading ------------------------------------------------------------


def test_one_seed_gives_identical_metrics_and_weights(tmp_path, cli):
    out = tmp_path / "models"
    reports = []
    for i, seed in enumerate((5, 5, 6)):
        report = tmp_path / f"run-{i}.json"
        status, output, err = cli("multiclass-softmax", "--epochs", "4", "--dropout", "0.3",
                                  "--seed", seed, "--output-dir", out, "--report", report)
        assert status == 0, err
        assert "Resuming" not in output
        reports.append(json.loads(report.read_text()))
    first, second, other = reports
    assert first["metrics"] == second["metrics"]
    assert first["details"]["final_loss"] == second["details"]["final_loss"]
    assert first["details"]["final_val_loss"] == second["details"]["final_val_loss"]
    weights = [_weights(out / "multiclass-softmax" / str(v)) for v in (1, 2, 3)]
    assert _same_weights(weights[0], weights[1])
    assert not _same_weights(weights[0], weights[2])  # another seed, other weights
    assert first["details"]["final_loss"] != other["details"]["final_loss"]
