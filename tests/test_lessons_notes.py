"""The loss table, the MLP's forward pass and the linear unit: by hand = Keras, and the lessons' claims.

`loss-functions`, `forward-pass` and `linear-unit` run from the CLI (in-process);
the formulas of `models.lessons.losses` and `models.lessons.forward` are also
checked against Keras on random inputs, and the forward pass against the
weights of the exported model, read back from disk.
"""

import json
import re
from pathlib import Path

import numpy as np
import pytest

from models.lessons import forward, losses

README = Path(__file__).resolve().parents[1] / "README.md"


def _catalogue_row(name):
    return next(line for line in README.read_text().splitlines() if line.startswith(f"| `{name}` |"))


LOSS_KEYS = ("binary_crossentropy", "categorical_crossentropy", "sparse_categorical_crossentropy",
             "mean_squared_error", "mean_absolute_error", "huber")


def test_each_loss_by_hand_equals_keras_on_random_rows():
    import keras

    rng = np.random.default_rng(0)
    y01 = rng.integers(0, 2, 50).astype(np.float32)
    p = rng.uniform(0.01, 0.99, 50).astype(np.float32)
    logits = rng.normal(size=(50, 4)).astype(np.float32)
    probs = (np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)).astype(np.float32)
    labels = rng.integers(0, 4, 50)
    onehot = np.eye(4, dtype=np.float32)[labels]
    y = rng.normal(size=50).astype(np.float32)
    y_hat = (y + rng.normal(scale=2.0, size=50)).astype(np.float32)  # errors on both sides of δ
    pairs = [
        (losses.binary_crossentropy(y01, p), keras.losses.BinaryCrossentropy()(y01, p)),
        (losses.categorical_crossentropy(onehot, probs),
         keras.losses.CategoricalCrossentropy()(onehot, probs)),
        (losses.sparse_categorical_crossentropy(labels, probs),
         keras.losses.SparseCategoricalCrossentropy()(labels, probs)),
        (losses.mean_squared_error(y, y_hat), keras.losses.MeanSquaredError()(y, y_hat)),
        (losses.mean_absolute_error(y, y_hat), keras.losses.MeanAbsoluteError()(y, y_hat)),
        (losses.huber(y, y_hat, delta=0.7), keras.losses.Huber(delta=0.7)(y, y_hat)),
    ]
    for hand, value in pairs:
        assert hand == pytest.approx(float(value), rel=1e-6, abs=1e-6)
    # the two cross-entropies agree with each other, and Huber sits between its two branches
    assert pairs[1][0] == pytest.approx(pairs[2][0], rel=1e-12)
    assert losses.huber([0.0], [0.5]) == 0.125 and losses.huber([0.0], [3.0]) == 2.5


def test_forward_by_hand_is_the_worked_neuron_and_refuses_unknown_activations():
    [layer] = forward.forward([0.9, 0.2, 0.3], [(np.array([[2.0], [3.0], [-1.0]]), [0.5], "sigmoid")])
    assert layer["z"][0] == pytest.approx(2.6) and layer["a"][0] == pytest.approx(0.930862, abs=1e-6)
    with pytest.raises(ValueError, match="activation"):
        forward.forward([1.0], [(np.ones((1, 1)), [0.0], "swish")])


def test_loss_functions_by_hand_equals_keras_and_outliers_pull_mse(run_recipe):
    status, report, out, err = run_recipe("loss-functions", "--no-export")
    assert status == 0, err
    details = report["details"]
    assert set(details["losses"]) == set(LOSS_KEYS)
    for name in LOSS_KEYS:
        entry = details["losses"][name]
        assert abs(entry["by_hand"] - entry["keras"]) < 1e-6, name
        assert entry["by_hand"] > 0
    # the fixed examples: binary cross-entropy -(ln .9 + ln .8 + ln .6 + ln .6)/4, MSE (.25+.25+0+4)/4
    bce = -(np.log(0.9) + np.log(0.8) + 2 * np.log(0.6)) / 4
    assert details["losses"]["binary_crossentropy"]["by_hand"] == pytest.approx(bce)
    assert details["losses"]["mean_squared_error"]["by_hand"] == pytest.approx(1.125)
    assert details["losses"]["categorical_crossentropy"]["keras"] == pytest.approx(
        details["losses"]["sparse_categorical_crossentropy"]["keras"], abs=1e-6)
    regression = details["regression"]
    assert set(regression) == {"mse", "mae", "huber"}
    for entry in regression.values():
        assert entry["test_rmse"] >= entry["test_mae"] > 0
    # the planted outliers drag MSE's fit; MAE and Huber resist them
    assert regression["mse"]["test_mae"] > 1.2 * max(regression["mae"]["test_mae"],
                                                     regression["huber"]["test_mae"])
    # log loss on a continuous target: a loss below zero, no prediction below the mean
    wrong = details["cross_entropy_on_continuous"]
    assert wrong["final_loss"] < -100
    assert wrong["share_of_predictions_below_mean"] == 0.0
    assert wrong["share_of_targets_below_mean"] > 0.4
    assert wrong["test_r2"] < wrong["mse_same_target"]["test_r2"] - 0.15
    assert "Log loss on a continuous target" in out
    # the README's catalogue quotes this default run (one test row of drift across CPUs)
    quoted = re.search(r"test MAE ([0-9.]+) / ([0-9.]+) / ([0-9.]+)", _catalogue_row("loss-functions"))
    for number, key in zip(quoted.groups(), ("mse", "mae", "huber")):
        assert float(number) == pytest.approx(regression[key]["test_mae"], abs=3.0)


def test_forward_pass_by_hand_equals_keras_layer_by_layer(run_recipe, output_dir, tmp_path):
    status, report, _, err = run_recipe("forward-pass", "--epochs", "3")
    assert status == 0, err
    drawing = tmp_path / "forward-pass-forward_pass.png"  # the network, z and f(z) beside each neuron
    assert drawing.read_bytes()[:4] == b"\x89PNG" and drawing.stat().st_size > 10_000
    details = report["details"]
    assert [(layer["name"], layer["units"], layer["activation"]) for layer in details["layers"]] == [
        ("hidden_1", 4, "sigmoid"), ("hidden_2", 4, "sigmoid"), ("output", 3, "softmax")]
    assert details["inputs"] == [0.9, 0.2, 0.3]
    assert details["max_abs_diff"] < 1e-6
    assert details["softmax_sum"] == pytest.approx(1.0, abs=1e-6)
    for layer in details["layers"]:
        np.testing.assert_allclose(layer["z"], layer["by_hand"]["z"], atol=1e-6)
        np.testing.assert_allclose(layer["a"], layer["by_hand"]["a"], atol=1e-6)
    sigmoid = 1 / (1 + np.exp(-np.array(details["layers"][0]["z"])))
    np.testing.assert_allclose(details["layers"][0]["a"], sigmoid, atol=1e-6)

    # The trained pass, recomputed here from the exported Keras model's weights.
    import keras

    model = keras.models.load_model(output_dir / "forward-pass" / "1" / "model.keras")
    trained = details["trained"]
    x = np.array(list(trained["features"].values()), dtype=np.float64)
    from models.lessons.activations import dense_layers

    trained_model = model.get_layer("forward_pass")  # behind the export's missing-value step
    normalization = trained_model.get_layer("normalization")
    a = (x - np.asarray(normalization.mean).reshape(-1)) / np.sqrt(
        np.asarray(normalization.variance).reshape(-1))
    dense = dense_layers(trained_model)
    for layer, entry in zip(dense, trained["layers"]):
        z = a @ layer.kernel.numpy() + layer.bias.numpy()
        np.testing.assert_allclose(entry["z"], z, atol=1e-5)
        a = 1 / (1 + np.exp(-z)) if entry["activation"] == "sigmoid" else np.exp(z) / np.exp(z).sum()
    np.testing.assert_allclose(trained["layers"][-1]["a"], a, atol=1e-6)
    assert trained["softmax_sum"] == pytest.approx(1.0, abs=1e-6)
    assert trained["max_abs_diff"] < 1e-5
    meta = json.loads((output_dir / "forward-pass" / "1" / "metadata.json").read_text())
    assert meta["feature_names"] == ["sepal length (cm)", "petal length (cm)", "petal width (cm)"]
    assert meta["hyperparameters"]["architecture"] == "3 -> 4 sigmoid -> 4 sigmoid -> 3 softmax"


def test_linear_unit_fits_the_sample_table_and_matches_linear_regression(run_recipe):
    status, report, out, err = run_recipe("linear-unit", "--no-export")
    assert status == 0, err
    details = report["details"]
    assert details["sample_table_loss"] < 1e-4
    table = details["sample_table"]
    assert table["rows"] == 3 and table["parameters"] == 4
    np.testing.assert_allclose(table["predictions"], [58, 67, 78], atol=0.02)
    # Underdetermined: the least-squares solution fits exactly too, with other weights.
    x = np.array([[20, 30, 10, 1], [30, 10, 25, 1], [21, 15, 31, 1]], dtype=np.float64)
    np.testing.assert_allclose(x @ [*table["lstsq_weights"], table["lstsq_bias"]], [58, 67, 78])
    assert abs(table["bias"] - table["lstsq_bias"]) > 0.1
    assert details["max_weight_diff"] < 1e-3
    assert abs(details["neuron_r2"] - details["linear_regression_r2"]) < 1e-3
    assert 0.3 < details["neuron_r2"] < 0.6
    assert "four parameters" in out
    quoted = re.search(r"test R² ([0-9.]+) = ([0-9.]+)", _catalogue_row("linear-unit"))
    assert float(quoted.group(1)) == pytest.approx(details["neuron_r2"], abs=0.01)
    assert float(quoted.group(2)) == pytest.approx(details["linear_regression_r2"], abs=0.01)


def test_full_float32_turns_tensor_float_32_off_inside_and_restores_it():
    import tensorflow as tf

    before = tf.config.experimental.tensor_float_32_execution_enabled()
    with pytest.raises(RuntimeError), forward.full_float32():
        assert not tf.config.experimental.tensor_float_32_execution_enabled()
        raise RuntimeError("the setting comes back on the way out, even so")
    assert tf.config.experimental.tensor_float_32_execution_enabled() == before
