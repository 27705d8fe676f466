"""`models.zoo`: names, load by name / version / path, every row form and error, and both runtimes."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from models import zoo

REPO = Path(__file__).resolve().parents[1]
IRIS_ROWS = [[5.1, 3.5, 1.4, 0.2], [6.3, 2.9, 5.6, 1.8], [5.9, 3.0, 4.2, 1.5]]


def train_exports(root):
    """Trains and exports two recipes with `--epochs 2` under `root` (once per session)."""
    from recipes.run import main

    for recipe in ("multiclass-softmax", "relu-regression"):
        if not zoo.names(root) or recipe not in zoo.names(root):
            status = main([recipe, "--epochs", "2", "--output-dir", str(root)])
            assert status == 0, f"{recipe} failed to train"
    return root


@pytest.fixture(scope="session")
def exports(tmp_path_factory):
    """An export root with `multiclass-softmax/1` and `relu-regression/1` (shared with test_serve)."""
    return train_exports(tmp_path_factory.getbasetemp() / "zoo-exports")


@pytest.fixture
def model_dir(exports, tmp_path):
    """A copy of the exports this test may change."""
    target = tmp_path / "models"
    shutil.copytree(exports, target)
    return target


def test_names_lists_models_with_versions(model_dir):
    (model_dir / "empty").mkdir()  # no version folder: not a model
    (model_dir / ".hidden" / "1").mkdir(parents=True)
    assert zoo.names(model_dir) == ["multiclass-softmax", "relu-regression"]
    assert zoo.names(model_dir / "missing") == []


def test_load_newest_by_name_then_by_version_and_path(model_dir):
    shutil.copytree(model_dir / "multiclass-softmax" / "1", model_dir / "multiclass-softmax" / "3")
    newest = zoo.load("multiclass-softmax", model_dir=model_dir)
    assert newest.version == 3 and newest.name == "multiclass-softmax"
    assert newest.path == model_dir / "multiclass-softmax" / "3"
    assert zoo.load("multiclass-softmax", version=1, model_dir=model_dir).version == 1
    assert zoo.load(model_dir / "multiclass-softmax").version == 3  # a model folder: newest
    assert zoo.load(str(model_dir / "multiclass-softmax"), version=1).version == 1
    by_folder = zoo.load(model_dir / "multiclass-softmax" / "1")  # one version folder
    assert by_folder.version == 1
    assert by_folder.metadata == json.loads((by_folder.path / "metadata.json").read_text())


def test_classifier_predicts_labels_and_probabilities(exports):
    model = zoo.load("multiclass-softmax", model_dir=exports)
    assert model.backend == "onnx" and model.task == "multiclass"
    labels = model.predict(IRIS_ROWS)
    probabilities = model.predict_proba(IRIS_ROWS)
    assert probabilities.shape == (3, 3) and probabilities.dtype == np.float32
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    assert list(labels) == [model.class_names[i] for i in probabilities.argmax(axis=1)]
    assert set(labels) <= {"setosa", "versicolor", "virginica"}


def test_every_row_form_gives_the_same_answer(exports):
    model = zoo.load("multiclass-softmax", model_dir=exports)
    expected = model.predict_proba(IRIS_ROWS)
    names = model.feature_names
    forms = {
        "ndarray float64": np.array(IRIS_ROWS),
        "ndarray float32": np.array(IRIS_ROWS, dtype=np.float32),
        "tuple of tuples": tuple(tuple(r) for r in IRIS_ROWS),
        "dicts, any key order": [dict(reversed(list(zip(names, r)))) for r in IRIS_ROWS],
        "numpy scalars": [[np.float64(v) for v in r] for r in IRIS_ROWS],
    }
    for form, rows in forms.items():
        np.testing.assert_array_equal(model.predict_proba(rows), expected, err_msg=form)
    ints = model.predict_proba([[5, 3, 1, 0]])
    np.testing.assert_array_equal(ints, model.predict_proba(np.array([[5.0, 3.0, 1.0, 0.0]])))


def test_regression_predicts_values_and_refuses_probabilities(exports):
    model = zoo.load("relu-regression", model_dir=exports)
    rows = np.full((2, len(model.feature_names)), 0.01)
    values = model.predict(rows)
    assert values.shape == (2,) and values.dtype == np.float32
    assert np.all(values >= 0)  # a ReLU head
    with pytest.raises(ValueError, match="relu-regression is a regression model.*predict\\(rows\\)"):
        model.predict_proba(rows)


def test_missing_values_are_imputed_with_the_training_mean(exports):
    model = zoo.load("multiclass-softmax", model_dir=exports)
    means = [f["mean"] for f in model.metadata["features"]]
    gaps = [[5.1, None, 1.4, 0.2], [float("nan")] * 4, [5.1, "NA", "", 0.2]]
    filled = [[5.1, means[1], 1.4, 0.2], means, [5.1, means[1], means[2], 0.2]]
    np.testing.assert_allclose(model.predict_proba(gaps), model.predict_proba(filled), atol=1e-6)
    named = [dict(zip(model.feature_names, row)) for row in gaps]
    np.testing.assert_allclose(model.predict_proba(named), model.predict_proba(filled), atol=1e-6)


@pytest.mark.parametrize(
    "rows, message",
    [
        ([[5.1, 3.5, 1.4, 0.2], [5.1, 3.5, 1.4]], r"Row 1 has 3 values; multiclass-softmax takes 4 \('sepal length"),
        ([[5.1, 3.5, "abc", 0.2]], r"Row 0, feature 'petal length \(cm\)': 'abc' is not a number"),
        ([[5.1, 3.5, "1.4", 0.2]], r"Row 0, feature 'petal length \(cm\)': '1.4' is not a number"),
        ([[5.1, 3.5, 1.4, float("inf")]], r"Row 0, feature 'petal width \(cm\)': inf is not a finite number"),
        pytest.param(  # NumPy warns of the overflow as the row is cast; zoo then says which value
            [[1e300, 3.5, 1.4, 0.2]], r"'sepal length \(cm\)': 1e\+300 is not a finite number \(within float32",
            marks=pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning"),
        ),
        ([[5.1, 3.5, 1.4, 0.2], 7], r"Row 1 is int 7, not a list of 4 values"),
        ([], r"`rows` is empty"),
        (np.zeros(4), r"`rows` must be 2-D \[rows, 4\]; for one row pass \[row\]"),
        (np.zeros((1, 5)), r"Row 0 has 5 values"),
        (np.array([["a", "b", "c", "d"]]), r"Row 0, feature 'sepal length \(cm\)': 'a' is not a number"),
        ("5.1,3.5,1.4,0.2", r"`rows` must be a list of rows .* Received: str"),
        ([{"sepal length (cm)": 5.1}], r"Row 0 lacks column\(s\) 'sepal width \(cm\)', 'petal length.*null \(None\) for a missing"),
        (
            [{"sepal length (cm)": 5.1, "sepal width (cm)": 3.5, "petal length (cm)": 1.4,
              "petal width (cm)": 0.2, "colour": 1}],
            r"Row 0 has unknown column\(s\) 'colour'; multiclass-softmax's columns are",
        ),
        ([{"sepal length (cm)": 5.1, "sepal width (cm)": 3.5, "petal length (cm)": 1.4,
           "petal width (cm)": "x"}], r"feature 'petal width \(cm\)': 'x' is not a number"),
        ([dict(zip(("sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"),
                   (5.1, 3.5, 1.4, 0.2))), [1, 2, 3, 4]], r"Row 1 is a list but row 0 is a dict"),
    ],
)
def test_bad_rows_raise_a_value_error_that_says_which(exports, rows, message):
    model = zoo.load("multiclass-softmax", model_dir=exports)
    with pytest.raises(ValueError, match=message):
        model.predict(rows)


def test_unknown_names_versions_and_paths(exports, tmp_path):
    with pytest.raises(zoo.ModelNotFoundError, match=r"No model 'nope' under .*multiclass-softmax, relu-regression"):
        zoo.load("nope", model_dir=exports)
    with pytest.raises(zoo.ModelNotFoundError, match=r"has no version 9 \(versions: 1\)"):
        zoo.load("multiclass-softmax", version=9, model_dir=exports)
    with pytest.raises(zoo.ModelNotFoundError, match="No model folder at"):
        zoo.load(tmp_path / "nowhere")
    with pytest.raises(ValueError, match=r"`version` must be an integer >= 1 or None. Received: version=0"):
        zoo.load("multiclass-softmax", version=0, model_dir=exports)
    with pytest.raises(ValueError, match=r"`backend` must be one of auto, onnx, savedmodel. Received: backend='tf'"):
        zoo.load("multiclass-softmax", model_dir=exports, backend="tf")


def test_broken_folders_are_named_in_the_error(model_dir):
    folder = model_dir / "multiclass-softmax" / "1"
    meta = json.loads((folder / "metadata.json").read_text())

    (folder / "metadata.json").write_text(json.dumps({**meta, "feature_names": ["a", "b", "c"]}))
    with pytest.raises(zoo.ModelLoadError, match=rf"{folder}.* does not take the inputs its metadata describes \(`features` float32 \[-1, 3\]"):
        zoo.load(folder)
    (folder / "metadata.json").write_text(json.dumps({**meta, "task": "ranking"}))
    with pytest.raises(zoo.ModelLoadError, match=rf"{folder}/metadata.json is not an export's metadata: its `task`"):
        zoo.load(folder)
    (folder / "metadata.json").write_text("{not json")
    with pytest.raises(zoo.ModelLoadError, match="cannot be read as JSON"):
        zoo.load(folder)
    (folder / "metadata.json").unlink()
    with pytest.raises(zoo.ModelLoadError, match=rf"{folder} has no metadata.json"):
        zoo.load(folder)

    other = model_dir / "relu-regression" / "1"
    (other / "model.onnx").unlink()
    with pytest.raises(zoo.ModelLoadError, match=rf"{other} has no model.onnx"):
        zoo.load(other, backend="onnx")
    (other / "saved_model.pb").unlink()
    with pytest.raises(zoo.ModelLoadError, match=rf"{other} has no saved_model.pb"):
        zoo.load(other)


def test_savedmodel_without_the_serving_signature_is_refused(model_dir):
    import tensorflow as tf

    folder = model_dir / "relu-regression" / "1"
    for item in ("saved_model.pb", "variables", "assets", "model.onnx", "fingerprint.pb"):
        path = folder / item
        shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    staging = model_dir / "staging"
    tf.saved_model.save(tf.Module(), str(staging))  # a SavedModel with no signatures
    for item in staging.iterdir():
        shutil.move(str(item), folder / item.name)
    with pytest.raises(zoo.ModelLoadError, match=rf"{folder} has no `serving_default` signature"):
        zoo.load(folder)


@pytest.mark.parametrize("name", ["multiclass-softmax", "relu-regression"])
def test_onnx_savedmodel_and_keras_agree(exports, name):
    import keras

    onnx = zoo.load(name, model_dir=exports, backend="onnx")
    saved = zoo.load(name, model_dir=exports, backend="savedmodel")
    assert (onnx.backend, saved.backend) == ("onnx", "savedmodel")
    rng = np.random.default_rng(0)
    rows = rng.normal(size=(64, len(onnx.feature_names))) * 2 + (5 if name == "multiclass-softmax" else 0)
    keras_out = np.asarray(keras.models.load_model(onnx.path / "model.keras")(rows.astype(np.float32)))
    a, b = onnx.outputs(rows), saved.outputs(rows)
    assert sorted(a) == sorted(b) == onnx.output_names
    if onnx.task == "regression":
        np.testing.assert_allclose(a["predictions"], keras_out.reshape(-1), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(b["predictions"], keras_out.reshape(-1), rtol=1e-5, atol=1e-5)
    else:
        np.testing.assert_allclose(a["probabilities"], keras_out, atol=1e-5)
        np.testing.assert_allclose(b["probabilities"], keras_out, atol=1e-5)
        np.testing.assert_array_equal(a["class_ids"], b["class_ids"])
        assert list(a["labels"]) == list(b["labels"])
        assert all(isinstance(label, str) for label in b["labels"])


def test_without_onnx_file_auto_falls_back_to_the_savedmodel(model_dir):
    folder = model_dir / "multiclass-softmax" / "1"
    expected = zoo.load(folder).predict_proba(IRIS_ROWS)
    (folder / "model.onnx").unlink()
    model = zoo.load(folder)
    assert model.backend == "savedmodel"
    np.testing.assert_allclose(model.predict_proba(IRIS_ROWS), expected, atol=1e-5)


def test_an_app_using_zoo_does_not_import_tensorflow(exports):
    script = f"""
import json, sys, time
started = time.perf_counter()

def peak_mib():  # this process's peak resident memory (ru_maxrss would count the parent's fork)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024

from models import zoo
model = zoo.load("multiclass-softmax", model_dir={str(exports)!r})
labels = model.predict({IRIS_ROWS!r})
print(json.dumps({{
    "labels": list(labels), "backend": model.backend,
    "heavy": sorted(m for m in ("tensorflow", "keras", "tf2onnx") if m in sys.modules),
    "seconds": time.perf_counter() - started,
    "peak_mib": peak_mib(),
}}))
"""
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["backend"] == "onnx"
    assert report["heavy"] == []
    assert report["labels"] == list(zoo.load("multiclass-softmax", model_dir=exports).predict(IRIS_ROWS))
    assert report["peak_mib"] < 150  # TensorFlow alone would take ~650 MiB
