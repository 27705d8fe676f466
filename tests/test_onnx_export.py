"""`model.onnx` beside the SavedModel: same outputs as Keras, and a failed conversion is harmless."""

import json

import numpy as np
import pytest

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")
onnxruntime = pytest.importorskip("onnxruntime")

from builders import mlp, prepared  # noqa: E402
from models import training  # noqa: E402
from models.export import onnx_model, savedmodel  # noqa: E402

# The four supervised recipes' kinds of head, each on its recipe's data.
HEADS = {
    "sigmoid": ("breast_cancer", "relu"),
    "softmax": ("iris", "relu"),
    "relu": ("diabetes", "relu"),
    "linear": ("diabetes_centered", "leaky_relu"),
}


def _trained(head):
    dataset_name, activation = HEADS[head]
    data = prepared(dataset_name, head)
    keras.utils.set_random_seed(0)
    model = mlp(data, head, hidden=(8, 4), activation=activation)
    training.fit(model, data.x_train, data.y_train, epochs=3, verbose=0)
    return data.dataset, data.split, data.for_export(model)


@pytest.mark.parametrize("head", list(HEADS))
def test_onnx_outputs_equal_keras_outputs(head, tmp_path):
    dataset, split, model = _trained(head)
    savedmodel.write_savedmodel(model, tmp_path, dataset.task, dataset.class_names)
    record = onnx_model.write(tmp_path)
    assert record["file"] == "model.onnx", record

    session = onnxruntime.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["features"]
    names = [o.name for o in session.get_outputs()]
    got = dict(zip(names, session.run(names, {"features": split.x_test})))
    keras_out = np.asarray(model(split.x_test, training=False))
    if dataset.task == "regression":
        assert sorted(names) == ["predictions"]
        # Values in the target's units (about 25-346): 1e-5 relative, 1e-5 absolute near 0.
        np.testing.assert_allclose(got["predictions"], keras_out.reshape(-1), rtol=1e-5, atol=1e-5)
        assert np.std(got["predictions"]) > 0  # a real model, not a constant
    else:
        assert sorted(names) == ["class_ids", "labels", "probabilities"]
        expected = np.hstack([1 - keras_out, keras_out]) if dataset.task == "binary" else keras_out
        np.testing.assert_allclose(got["probabilities"], expected, atol=1e-5)
        np.testing.assert_array_equal(got["class_ids"], expected.argmax(axis=1))
        assert list(got["labels"]) == [dataset.class_names[i] for i in got["class_ids"]]


@pytest.mark.parametrize("head", ["sigmoid", "relu"])
def test_leaving_out_the_inapplicable_optimizers_writes_the_same_file(head, monkeypatch):
    """tf2onnx's optimizers for ops these models lack (quantization, loops...) change nothing.

    The two files are compared as text, the numbers tf2onnx appends to the
    names it makes (`one_hot__42`, `unk__10`: global counters) left out.
    """
    import re

    dataset, _, model = _trained(head)
    servable = savedmodel.servable(
        model, savedmodel.serving_function(model, dataset.task, dataset.class_names))

    def converted():
        return re.sub(r"__\d+", "__N", str(onnx_model.convert(servable)))

    lean = converted()
    monkeypatch.setattr(onnx_model, "NOT_APPLICABLE", ())
    every = converted()
    assert "MatMul" in lean and "raw_data" in lean  # the graph and its weights
    assert lean == every


def test_export_writes_onnx_and_records_it(tmp_path):
    dataset, split, model = _trained("softmax")
    folder = savedmodel.export(
        model, output_dir=tmp_path, name="iris", task=dataset.task, class_names=dataset.class_names,
        metadata={"feature_names": dataset.feature_names},
    )
    record = json.loads((folder / "metadata.json").read_text())["onnx"]
    assert (folder / "model.onnx").is_file()
    assert record["file"] == "model.onnx" and record["opset"] == onnx_model.OPSET
    assert 0 <= record["max_abs_diff"] < 1e-5


class _NumpyDoubler(keras.layers.Layer):
    """A layer whose op (a Python function) has no ONNX form, though the SavedModel keeps it."""

    def call(self, x):
        y = tf.numpy_function(lambda a: (2 * a).astype(np.float32), [x], tf.float32)
        return tf.reshape(y, tf.shape(x))

    def compute_output_shape(self, shape):
        return shape


def test_export_succeeds_without_onnx_when_conversion_fails(tmp_path, capfd):
    model = keras.Sequential([keras.Input((3,), name="features"), _NumpyDoubler(), keras.layers.Dense(1)])
    folder = savedmodel.export(
        model, output_dir=tmp_path, name="odd", task="regression",
        metadata={"feature_names": ["a", "b", "c"]},
    )
    assert (folder / "saved_model.pb").is_file() and (folder / "model.keras").is_file()
    assert not (folder / "model.onnx").exists()
    record = json.loads((folder / "metadata.json").read_text())["onnx"]
    assert record["file"] is None
    assert "PyFunc" in record["error"]
    assert "tf2onnx" not in capfd.readouterr().err  # the reason is in the metadata, not on the console
