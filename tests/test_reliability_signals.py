"""Reliability, round two: SIGTERM, unwritable folders, a full disk, damaged exports, twin runs.

As in `test_reliability`, the faults are real: signals sent to child processes
running the command line, a file-size limit (`RLIMIT_FSIZE`) set on a child,
a file where the output folder should be, damaged files in a version folder.
"""

import contextlib
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from test_reliability import (
    ENV,
    REPO,
    TIMEOUT,
    _checkpoint_files,
    _epochs_shown,
    _same_weights,
    _weights,
    _whole_versions,
    child,
)
from test_zoo import train_exports

from models import zoo
from models.export import layout
from models.training import checkpoints

TERMINATED = re.compile(r"^Terminated \(SIGTERM\): (\d+) epoch\(s\) are saved in (\S+); the same "
                        r"command resumes from there \(add --restart to start afresh\)\.$", re.MULTILINE)


def _leftover_temporaries(out):
    return list(Path(out).glob(f"{checkpoints.RUNS}/*/.{checkpoints.FILE}.*"))


def _saved_epoch(out):
    """The epoch in the one checkpoint under `out`, read as a resuming run reads it."""
    [path] = _checkpoint_files(out)
    with np.load(path, allow_pickle=False) as loaded:  # a whole, readable file
        return json.loads(str(loaded["state"]))["epoch"]


# 1. SIGTERM ------------------------------------------------------------------------------


def test_sigterm_saves_the_last_epoch_exits_143_and_resumes_to_the_same_weights(tmp_path, cli):
    out = tmp_path / "models"
    # enough epochs that the resumed run is still training when its storm of signals begins
    # (an epoch of 341 steps takes ~0.05 s here: with 8, the resumed run could end first)
    epochs = 30
    args = ["binary-sigmoid", "--batch-size", "1", "--epochs", str(epochs), "--output-dir", out]

    # one SIGTERM mid-training: the epoch under way ends, is saved, the run exits 143
    with child(args, tmp_path / "a.log") as a:
        assert a.wait_for(lambda: f"Epoch 3/{epochs}" in a.output), a.output
        sent = time.perf_counter()
        assert a.signal(signal.SIGTERM) == 143, a.output
        stop_seconds = time.perf_counter() - sent
    stopped = TERMINATED.findall(a.output)
    assert len(stopped) == 1 and a.output.rstrip().splitlines()[-1].startswith("Terminated"), a.output
    assert "Traceback" not in a.output
    saved = int(stopped[0][0])
    assert 3 <= saved < epochs and saved == _epochs_shown(a.output)[-1]  # the last finished epoch
    assert _saved_epoch(out) == saved and not _leftover_temporaries(out)
    assert stop_seconds < 5, stop_seconds  # an epoch here takes a fraction of a second
    assert layout.versions(out / "binary-sigmoid") == []

    # the same command resumes; then a storm of SIGTERMs, some while it saves
    with child(args, tmp_path / "b.log") as b:
        assert b.wait_for(lambda: _epochs_shown(b.output.partition("Resuming")[2])), b.output
        while b.process.poll() is None:
            b.process.send_signal(signal.SIGTERM)
            time.sleep(0.001)
        assert b.process.wait(timeout=TIMEOUT) == 143, b.output
    assert f"Resuming from epoch {saved} of {epochs}" in b.output
    again = TERMINATED.findall(b.output)
    assert len(again) == 1 and "Traceback" not in b.output, b.output
    assert _saved_epoch(out) == int(again[0][0]) >= saved and not _leftover_temporaries(out)

    # the same command once more: it resumes from that checkpoint and completes
    status, output, err = cli(*args, "--report", tmp_path / "resumed.json")
    assert status == 0, err
    assert f"Resuming from epoch {again[0][0]} of {epochs}" in output
    assert not (out / checkpoints.RUNS).exists()

    # bit for bit what an uninterrupted run gives
    status, _, err = cli(*args[:-1], tmp_path / "plain", "--report", tmp_path / "plain.json")
    assert status == 0, err
    resumed, plain = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("resumed", "plain"))
    assert resumed["metrics"] == plain["metrics"]
    assert resumed["details"]["final_loss"] == plain["details"]["final_loss"]
    assert _same_weights(_weights(out / "binary-sigmoid" / "1"),
                         _weights(tmp_path / "plain" / "binary-sigmoid" / "1"))


# 2. An output folder that cannot be written -----------------------------------------------


@contextlib.contextmanager
def _read_only(folder):
    """`folder` made read-only: by its mode, or for root (who ignores modes) immutable."""
    folder.chmod(0o555)
    immutable = False
    try:
        if os.access(folder, os.W_OK):  # root
            immutable = subprocess.run(["chattr", "+i", str(folder)], capture_output=True,
                                       check=False).returncode == 0 if shutil.which("chattr") else False
            if not immutable:
                pytest.skip("root here, and `chattr +i` is unavailable: no way to make a read-only folder")
        yield
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(folder)], check=True)
        folder.chmod(0o755)


@pytest.mark.parametrize("case", ["a file in its place", "read-only"])
def test_an_output_folder_that_cannot_be_written_is_refused_before_training(tmp_path, cli, case):
    out = tmp_path / "models"
    out.mkdir()
    args = ["binary-sigmoid", "--epochs", "20", "--output-dir", out]
    if case == "read-only":
        with _read_only(out):
            started = time.perf_counter()
            status, output, err = cli(*args)
            refused = time.perf_counter() - started
        named, fix = out, f"`chmod u+w {out}`"
    else:
        (out / "binary-sigmoid").write_text("a file where the model folder should be")
        started = time.perf_counter()
        status, output, err = cli(*args)
        refused = time.perf_counter() - started
        named, fix = out / "binary-sigmoid", "move or delete it"
        (out / "binary-sigmoid").unlink()
    assert status == 1
    assert err.startswith(f"error: The output folder {out / 'binary-sigmoid'} cannot be written: "
                          f"{named} "), err
    assert fix in err and "`--output-dir DIR`" in err and "Nothing was trained or exported" in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert _epochs_shown(output) == [] and list(out.iterdir()) == []  # nothing made, no .runs

    # once fixed, the same command trains: the refusal took a sliver of that time
    status, _, err = cli(*args, "--no-export", "--report", tmp_path / "run.json")
    assert status == 0, err
    train_seconds = json.loads((tmp_path / "run.json").read_text())["timing"]["train_seconds"]
    print(f"refused in {refused:.4f} s; training takes {train_seconds:.2f} s")
    assert refused < train_seconds / 10, (refused, train_seconds)


PROBE = ("import sys; from recipes.run import main; status = main(sys.argv[1:]); "
         "print('tensorflow' in sys.modules); sys.exit(status)")


def test_the_refusal_comes_before_tensorflow_starts(tmp_path):
    blocker = tmp_path / "models"
    blocker.write_text("not a folder")
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-c", PROBE, "binary-sigmoid", "--output-dir", str(blocker)],
        cwd=REPO, env=ENV, capture_output=True, text=True, timeout=TIMEOUT, check=False)
    seconds = time.perf_counter() - started
    assert result.returncode == 1 and result.stdout.strip() == "False", result
    assert f"{blocker} is a file where a folder should be" in result.stderr
    assert seconds < 10, seconds  # the interpreter and NumPy, not TensorFlow


# 3. A full disk during the export ---------------------------------------------------------

FILE_LIMIT = 50_000
"""Bytes per file: the checkpoint (~27 kB) fits, the SavedModel's graph (~60 kB) does not."""


def _limited(limit):
    def set_limit():  # in the child, before it runs Python; SIGXFSZ is left at its default
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return set_limit


def test_a_full_disk_during_export_leaves_nothing_half_written_and_keeps_the_training(
        tmp_path, cli, monkeypatch):
    out = tmp_path / "models"
    root = out / "multiclass-softmax"
    args = ["multiclass-softmax", "--epochs", "3", "--output-dir", out]
    result = subprocess.run([sys.executable, "-m", "recipes.run", *map(str, args)], cwd=REPO,
                            env=ENV, capture_output=True, text=True, timeout=TIMEOUT,
                            preexec_fn=_limited(FILE_LIMIT), check=False)
    assert result.returncode == 1, result  # not killed by SIGXFSZ (-25)
    assert _epochs_shown(result.stdout) == [1, 2, 3]
    err = result.stderr
    assert err.startswith(f"error: Could not write the model under {root}: the disk is full ("), err
    assert "Nothing was exported" in err and "without training again" in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert list(root.iterdir()) == []  # no version folder, no staging folder
    assert len(_checkpoint_files(out)) == 1

    # room again, but a SIGTERM in the middle of the export: still nothing half-written
    status, output, err = _terminated_while_exporting(cli, args, monkeypatch)
    assert status == 143, err
    assert "Resuming from epoch 3 of 3 (training had ended" in output
    assert err == ("Terminated (SIGTERM) while exporting; nothing was exported. The trained model "
                   "is kept: the same command exports it without training again.\n")
    assert list(root.iterdir()) == [] and len(_checkpoint_files(out)) == 1

    # the same command, left alone: it exports, training nothing again
    status, output, err = cli(*args)
    assert status == 0, err
    assert "Resuming from epoch 3 of 3 (training had ended" in output and _epochs_shown(output) == []
    assert _whole_versions(root) == [1]
    assert not (out / checkpoints.RUNS).exists()


def _terminated_while_exporting(cli, args, monkeypatch):
    """Runs `cli(*args)` here with one SIGTERM sent to this process in the middle of its export.

    The export is held once its staging folder is written, before it is published, until the
    signal arrives: no race with a fast export. The CLI's own handler takes it (a placeholder
    handler is in place before and after the run, so a late one cannot end the test process).
    """
    exporting, publish = threading.Event(), layout._publish

    def held(staging, root, meta):
        exporting.set()
        time.sleep(TIMEOUT)  # the CLI's SIGTERM handler raises here, in the main thread
        return publish(staging, root, meta)

    def send_once_exporting():
        if exporting.wait(TIMEOUT):
            os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(layout, "_publish", held)
    before = signal.signal(signal.SIGTERM, lambda signum, frame: None)
    sender = threading.Thread(target=send_once_exporting, daemon=True)
    try:
        sender.start()
        return cli(*args)
    finally:
        sender.join(TIMEOUT)
        signal.signal(signal.SIGTERM, before)
        monkeypatch.setattr(layout, "_publish", publish)


def test_restart_after_a_failed_export_trains_afresh(tmp_path, cli):
    out = tmp_path / "models"
    args = ["multiclass-softmax", "--epochs", "3", "--output-dir", out]
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_LIMIT, hard))  # this process, for one run
    try:
        status, _, err = cli(*args)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert status == 1 and "the disk is full" in err, err
    assert len(_checkpoint_files(out)) == 1
    status, output, err = cli(*args, "--restart")
    assert status == 0, err
    assert "Resuming" not in output and _epochs_shown(output) == [1, 2, 3]
    assert _whole_versions(out / "multiclass-softmax") == [1]
    assert not (out / checkpoints.RUNS).exists()


def test_a_checkpoint_that_cannot_be_written_does_not_stop_training(tmp_path, cli):
    out = tmp_path / "models"
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, hard))  # below the checkpoint's ~27 kB
    try:
        status, output, err = cli("multiclass-softmax", "--epochs", "3", "--output-dir", out)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert _epochs_shown(output) == [1, 2, 3]  # trained to the end
    assert status == 1 and "the disk is full" in err and "then run again" in err, err
    assert "without training again" not in err  # nothing was kept to export later
    assert _checkpoint_files(out) == [] and _leftover_temporaries(out) == []
    assert list((out / "multiclass-softmax").iterdir()) == []


# 4. Damaged exports (the zoo's side) ------------------------------------------------------


@pytest.fixture
def version(tmp_path_factory, tmp_path):
    """A copy of a `multiclass-softmax` version folder that a test may damage."""
    exports = train_exports(tmp_path_factory.getbasetemp() / "zoo-exports")
    folder = tmp_path / "multiclass-softmax" / "1"
    shutil.copytree(exports / "multiclass-softmax" / "1", folder)
    return folder


def _cut(path, keep=None):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2 if keep is None else keep])


@pytest.mark.parametrize("damage, backend, named, says", [
    ("truncated metadata.json", "auto", "metadata.json", "damaged or truncated"),
    ("empty model.onnx", "onnx", "model.onnx", "the file is empty, 0 bytes"),
    ("corrupt model.onnx", "onnx", "model.onnx", "ONNX Runtime cannot load it"),
    ("no variables/", "savedmodel", "variables/", "the SavedModel's weights are gone"),
    ("random saved_model.pb", "savedmodel", "saved_model.pb", "TensorFlow cannot load"),
    ("both runtimes' files", "auto", "model.onnx", "cannot be loaded either"),
])
def test_a_damaged_export_raises_the_zoos_error_naming_the_file(version, damage, backend, named,
                                                                says):
    if damage == "truncated metadata.json":
        _cut(version / "metadata.json")
    elif damage == "empty model.onnx":
        _cut(version / "model.onnx", 0)
    elif damage == "corrupt model.onnx":
        _cut(version / "model.onnx")
    elif damage == "no variables/":
        shutil.rmtree(version / "variables")
    else:
        (version / "saved_model.pb").write_bytes(np.random.default_rng(0).bytes(4096))
        if damage == "both runtimes' files":
            _cut(version / "model.onnx", 0)
    with pytest.raises(zoo.ModelLoadError) as raised:
        zoo.load(version, backend=backend)
    message = str(raised.value)
    assert message.startswith(f"{version / named}"), message
    assert says in message and "\n" not in message and "ONNXRuntimeError" not in message
    error = raised.value  # no runtime's exception chained to it either
    assert error.__cause__ is None and (error.__context__ is None or error.__suppress_context__)


@pytest.mark.parametrize("damage", ["empty", "corrupt"])
def test_a_bad_model_onnx_falls_back_to_the_savedmodel_with_a_warning(version, damage):
    good = zoo.load(version, backend="onnx")
    rows = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]
    _cut(version / "model.onnx", 0 if damage == "empty" else None)
    with pytest.warns(RuntimeWarning, match=rf"^{re.escape(str(version / 'model.onnx'))} is damaged"):
        model = zoo.load(version)
    assert model.backend == "savedmodel" and "Running the SavedModel beside it" in model.fallback
    assert list(model.predict(rows)) == list(good.predict(rows))
    np.testing.assert_allclose(model.predict_proba(rows), good.predict_proba(rows), atol=1e-5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert zoo.load(version, backend="savedmodel").fallback is None  # asked for: no warning


# 7. The same command twice at once --------------------------------------------------------


def test_the_same_command_twice_at_once_gives_two_whole_versions(tmp_path, cli):
    out = tmp_path / "models"
    args = ["binary-sigmoid", "--epochs", "5", "--output-dir", out]
    with child(args, tmp_path / "a.log") as a:
        assert a.wait_for(lambda: "Epoch 1/5" in a.output), a.output
        a.process.send_signal(signal.SIGSTOP)  # alive, holding its checkpoint, going nowhere
        try:
            status, output, err = cli(*args)  # the same command, here, meanwhile
        finally:
            a.process.send_signal(signal.SIGCONT)
        assert a.process.wait(timeout=TIMEOUT) == 0, a.output
    assert status == 0, err
    # the second trained without a checkpoint rather than share one, and said so
    assert f"No checkpoint: process {a.process.pid} is training the same run" in output
    assert "No checkpoint" not in a.output and "Resuming" not in a.output + output
    assert _whole_versions(out / "binary-sigmoid") == [1, 2]  # the second's, then the first's
    assert not (out / checkpoints.RUNS).exists()  # the first completed and removed it
    assert _same_weights(_weights(out / "binary-sigmoid" / "1"), _weights(out / "binary-sigmoid" / "2"))
