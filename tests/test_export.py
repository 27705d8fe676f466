"""Exports: TensorFlow Serving's layout, the serving signature, versions, whole or nothing."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from models import data
from models.export import layout


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """One quick export of each head, with the test rows to check them on."""
    from recipes.run import main

    root = tmp_path_factory.mktemp("exports")
    for name in ("binary-sigmoid", "multiclass-softmax", "relu-regression", "leaky-relu-regression"):
        assert main([name, "--epochs", "2", "--output-dir", str(root)]) == 0
    return root


@pytest.mark.parametrize(
    "name, dataset",
    [("binary-sigmoid", "breast_cancer"), ("multiclass-softmax", "iris"),
     ("relu-regression", "diabetes"), ("leaky-relu-regression", "diabetes_centered")],
)
def test_savedmodel_signature_matches_the_keras_model_on_raw_rows(exported, name, dataset):
    import keras
    import tensorflow as tf

    folder = exported / name / "1"
    rows = data.load(dataset).x[:25]  # raw, unscaled values
    keras_out = np.asarray(keras.saving.load_model(folder / "model.keras")(rows))
    signature = tf.saved_model.load(str(folder)).signatures["serving_default"]
    out = {k: v.numpy() for k, v in signature(features=tf.constant(rows)).items()}
    meta = json.loads((folder / "metadata.json").read_text())
    assert meta["feature_names"] == list(data.load(dataset).feature_names)
    if meta["task"] == "regression":
        assert set(out) == {"predictions"}
        assert out["predictions"].shape == (25,) and out["predictions"].dtype == np.float32
        np.testing.assert_allclose(out["predictions"], keras_out[:, 0], rtol=1e-5, atol=1e-4)
        if name == "relu-regression":
            assert (out["predictions"] >= 0).all()
        return
    assert set(out) == {"probabilities", "class_ids", "labels"}
    probabilities = out["probabilities"]
    expected = np.concatenate([1 - keras_out, keras_out], 1) if meta["task"] == "binary" else keras_out
    assert probabilities.shape == (25, len(meta["class_names"]))
    np.testing.assert_allclose(probabilities, expected, atol=1e-6)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    assert out["class_ids"].dtype == np.int64
    np.testing.assert_array_equal(out["class_ids"], probabilities.argmax(axis=1))
    labels = [meta["class_names"][i] for i in out["class_ids"]]
    assert [b.decode() for b in out["labels"]] == labels


@pytest.mark.parametrize("name", ["binary-sigmoid", "multiclass-softmax"])
def test_savedmodel_holds_the_models_weights_and_no_other_state(exported, name):
    """The SavedModel is written from the signature's function and the variables it reads."""
    import keras
    import tensorflow as tf

    folder = exported / name / "1"
    saved = tf.train.load_checkpoint(str(folder / "variables" / "variables"))
    names = [n for n, _ in tf.train.list_variables(str(folder / "variables" / "variables"))
             if n != "_CHECKPOINTABLE_OBJECT_GRAPH"]
    weights = keras.saving.load_model(folder / "model.keras").weights
    assert len(names) == len(weights) > 0
    left = [saved.get_tensor(n) for n in names]
    for weight in weights:  # each Keras weight is saved once, value for value
        match = next(i for i, value in enumerate(left)
                     if value.shape == tuple(weight.shape) and np.array_equal(value, weight.numpy()))
        left.pop(match)
    assert left == []


def test_version_folder_has_everything_the_design_lists(exported):
    folder = exported / "binary-sigmoid" / "1"
    for item in ("saved_model.pb", "variables", "assets", "model.keras", "metadata.json",
                 "history.csv", "history.png"):
        assert (folder / item).exists(), item
    meta = json.loads((folder / "metadata.json").read_text())
    for key in ("recipe", "version", "task", "feature_names", "class_names", "target", "metrics",
                "hyperparameters", "dataset", "tensorflow_version", "keras_version", "device",
                "created_at"):
        assert key in meta, key
    assert meta["class_names"] == ["malignant", "benign"]
    assert meta["dataset"]["rows"] == 569 and len(meta["dataset"]["sha256"]) == 64
    assert meta["hyperparameters"]["epochs"] == 2
    history = (folder / "history.csv").read_text().splitlines()
    assert set(history[0].split(",")) == {"epoch", "loss", "accuracy", "val_loss", "val_accuracy",
                                           "epoch_seconds"}
    assert len(history) == 3


def test_saved_model_cli_lists_the_serving_signature(exported):
    cli = [str(Path(sys.executable).with_name("saved_model_cli"))]
    result = subprocess.run(
        [*cli, "show", "--dir", str(exported / "multiclass-softmax" / "1"), "--tag_set", "serve",
         "--signature_def", "serving_default"],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "inputs['features']" in result.stdout
    assert "shape: (-1, 4)" in result.stdout
    for output in ("probabilities", "class_ids", "labels"):
        assert f"outputs['{output}']" in result.stdout
    assert "DT_INT64" in result.stdout and "DT_STRING" in result.stdout


def test_a_second_run_makes_version_2_and_leaves_version_1_untouched(cli, output_dir):
    assert cli("multiclass-softmax", "--epochs", "1", "--output-dir", output_dir)[0] == 0
    first = output_dir / "multiclass-softmax" / "1"
    before = {p.relative_to(first): p.read_bytes() for p in first.rglob("*") if p.is_file()}
    assert cli("multiclass-softmax", "--epochs", "1", "--output-dir", output_dir)[0] == 0
    assert layout.versions(output_dir / "multiclass-softmax") == [1, 2]
    after = {p.relative_to(first): p.read_bytes() for p in first.rglob("*") if p.is_file()}
    assert after == before
    meta = json.loads((output_dir / "multiclass-softmax" / "2" / "metadata.json").read_text())
    assert meta["version"] == 2


def test_no_export_writes_no_model(cli, output_dir):
    status, out, _ = cli("binary-sigmoid", "--epochs", "1", "--no-export", "--output-dir", output_dir)
    assert status == 0
    assert "Export: none" in out
    assert layout.versions(output_dir / "binary-sigmoid") == []


def test_a_failed_write_leaves_no_version_and_no_staging_folder(tmp_path):
    def write(folder):
        (folder / "half.bin").write_bytes(b"x" * 100)
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        layout.write_version(tmp_path, "m", write, {"recipe": "m"})
    assert list((tmp_path / "m").iterdir()) == []
    path = layout.write_version(tmp_path, "m", lambda f: (f / "a.txt").write_text("ok"), {"recipe": "m"})
    assert path == tmp_path / "m" / "1"
    assert json.loads((path / "metadata.json").read_text())["version"] == 1
