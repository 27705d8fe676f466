"""`--tensorboard DIR`: event files read back with TensorBoard's own reader.

Scalars per epoch (train and validation), weight histograms per layer, one
sub-folder per variant, and the vanishing gradient's per-layer gradient norms.
"""

import numpy as np
import pytest

from recipes.core import registry

event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
from tensorboard.util import tensor_util  # noqa: E402


def _read(folder):
    """`{tag: (plugin, [steps], [values])}` of every summary in the event files of `folder`."""
    accumulator = event_accumulator.EventAccumulator(
        str(folder), size_guidance={event_accumulator.TENSORS: 0})
    accumulator.Reload()
    found = {}
    for tag in accumulator.Tags()["tensors"]:
        events = accumulator.Tensors(tag)
        found[tag] = (accumulator.SummaryMetadata(tag).plugin_data.plugin_name,
                      [e.step for e in events],
                      [tensor_util.make_ndarray(e.tensor_proto) for e in events])
    return found


def test_every_training_recipe_takes_tensorboard():
    for name in registry.names():
        recipe = registry.get(name)
        assert ("tensorboard" in recipe.options) == ("epochs" in recipe.options), name


def test_scalars_per_epoch_and_weight_histograms_match_the_run(run_recipe, tmp_path):
    logs = tmp_path / "tb"
    status, report, out, err = run_recipe("binary-sigmoid", "--epochs", "3", "--no-export",
                                          "--tensorboard", logs)
    assert status == 0, err
    train, validation = _read(logs / "train"), _read(logs / "validation")
    for tag in ("epoch_loss", "epoch_accuracy"):
        assert train[tag][0] == "scalars" and train[tag][1] == [0, 1, 2]
        assert validation[tag][0] == "scalars" and validation[tag][1] == [0, 1, 2]
    details = report["details"]
    assert float(train["epoch_loss"][2][-1]) == pytest.approx(details["final_loss"], rel=1e-6)
    assert float(validation["epoch_loss"][2][-1]) == pytest.approx(details["final_val_loss"],
                                                                   rel=1e-6)
    histograms = {tag: v for tag, v in train.items() if v[0] == "histograms"}
    kernels = sorted(tag for tag in histograms if tag.endswith("kernel/histogram"))
    assert len(kernels) == 3  # 30 -> 16 -> 8 -> 1: three Dense layers, a kernel and a bias each
    assert len(histograms) == 6
    for tag in kernels:
        _, steps, values = histograms[tag]
        assert steps == [0, 1, 2]
        assert values[-1].shape[1] == 3 and values[-1][:, 2].sum() > 0  # buckets: left, right, count
    # each kernel's histogram counts all its weights: 30 x 16, 16 x 8, 8 x 1
    counts = sorted(round(float(histograms[t][2][0][:, 2].sum())) for t in kernels)
    assert counts == [8, 16 * 8, 30 * 16]
    assert "No checkpoint" not in out  # the TensorBoard writers do not stop a run resuming


def test_logging_does_not_change_the_numbers(run_recipe, tmp_path):
    _, with_logs, _, _ = run_recipe("binary-sigmoid", "--epochs", "2", "--no-export",
                                    "--tensorboard", tmp_path / "tb")
    _, without, _, _ = run_recipe("binary-sigmoid", "--epochs", "2", "--no-export")
    assert with_logs["metrics"] == without["metrics"]
    assert with_logs["details"]["final_loss"] == without["details"]["final_loss"]


def test_vanishing_gradient_logs_gradient_norms_per_variant(run_recipe, tmp_path):
    logs = tmp_path / "tb"
    status, report, _, err = run_recipe("vanishing-gradient", "--epochs", "2", "--hidden", "8,8,8",
                                        "--tensorboard", logs)
    assert status == 0, err
    assert sorted(p.name for p in logs.iterdir()) == ["leaky_relu", "relu", "sigmoid", "tanh"]
    for activation in ("sigmoid", "relu"):
        train = _read(logs / activation / "train")
        _, steps, values = train["gradient_norm/by_layer_at_init"]
        assert steps == [1, 2, 3]
        np.testing.assert_allclose([float(v) for v in values],
                                   report["details"]["gradient_norms"][activation], rtol=1e-6)
        for layer in ("01", "02", "03"):
            plugin, steps, values = train[f"gradient_norm/hidden_{layer}"]
            assert plugin == "scalars" and steps == [0, 1] and all(float(v) > 0 for v in values)
        assert train["epoch_loss"][1] == [0, 1]
        assert _read(logs / activation / "validation")["epoch_accuracy"][1] == [0, 1]
    # the lesson, read from the logs: sigmoid's first layer gets far less gradient than its last
    sigmoid = [float(v) for v in _read(logs / "sigmoid" / "train")["gradient_norm/by_layer_at_init"][2]]
    assert sigmoid[0] < sigmoid[-1] / 4


def test_an_unwritable_log_folder_is_one_clear_message(cli, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    status, _, err = cli("binary-sigmoid", "--epochs", "1", "--tensorboard", blocker / "logs",
                         "--output-dir", tmp_path / "models")
    assert status == 1
    assert "Could not write TensorBoard logs under" in err and "--tensorboard DIR" in err
    assert "Traceback" not in err
    assert not (tmp_path / "models" / "binary-sigmoid").exists()
