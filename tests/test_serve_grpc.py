"""`python -m models.serve --grpc-port`: TensorFlow Serving's gRPC API, with the official client.

The stubs and messages are `tensorflow-serving-api`'s and the tensors `tf.make_tensor_proto`'s,
unchanged; the answers are checked against the REST answer and the zoo. Status codes and
messages follow `tensorflow/serving` (commit 9d981c5c; paths under `tensorflow_serving/`).
"""

import shutil

import grpc
import numpy as np
import pytest

from models import zoo

from serving_fixtures import IRIS_ROWS, Client, exports, running  # noqa: F401 (fixtures)

tf = pytest.importorskip("tensorflow")
apis = pytest.importorskip("tensorflow_serving.apis")
from tensorflow_serving.apis import (  # noqa: E402
    classification_pb2, get_model_metadata_pb2, get_model_status_pb2, model_service_pb2_grpc, predict_pb2,
    prediction_service_pb2_grpc, regression_pb2,
)

REGRESSION_ROWS = (np.random.default_rng(0).normal(size=(4, 10)) * 0.05).astype(np.float32)


@pytest.fixture(scope="module")
def served(exports, tmp_path_factory):
    """Both servers on one store: `(rest Client, PredictionServiceStub, ModelServiceStub, model_dir)`."""
    model_dir = tmp_path_factory.mktemp("grpc") / "models"
    shutil.copytree(exports, model_dir)
    shutil.copytree(model_dir / "relu-regression" / "1", model_dir / "relu-regression" / "2")
    with running(model_dir, grpc_port=0, version_labels=["relu-regression:stable=1"]) as server:
        channel = grpc.insecure_channel(f"127.0.0.1:{server.grpc.port}")
        yield (Client(server.server_address[1]), prediction_service_pb2_grpc.PredictionServiceStub(channel),
               model_service_pb2_grpc.ModelServiceStub(channel), model_dir)
        channel.close()


def _predict_request(name, rows, version=None, label=None, signature=None, output_filter=()):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = name
    if version is not None:
        request.model_spec.version.value = version
    if label is not None:
        request.model_spec.version_label = label
    if signature is not None:
        request.model_spec.signature_name = signature
    request.inputs["features"].CopyFrom(tf.make_tensor_proto(rows))
    request.output_filter.extend(output_filter)
    return request


def test_predict_gives_the_rest_answers_and_the_zoos_numbers_for_a_classifier(served):
    rest, stub, _, model_dir = served
    model = zoo.load("multiclass-softmax", model_dir=model_dir)
    response = stub.Predict(_predict_request("multiclass-softmax", np.float32(IRIS_ROWS)), timeout=20)
    assert sorted(response.outputs) == ["class_ids", "labels", "probabilities"]
    probabilities = tf.make_ndarray(response.outputs["probabilities"])
    np.testing.assert_array_equal(probabilities, model.predict_proba(IRIS_ROWS))
    assert [b.decode() for b in tf.make_ndarray(response.outputs["labels"])] == list(model.predict(IRIS_ROWS))
    np.testing.assert_array_equal(tf.make_ndarray(response.outputs["class_ids"]), probabilities.argmax(axis=1))
    # predict_util.cc:97 MakeModelSpec: the answer names the version and signature it ran
    assert (response.model_spec.name, response.model_spec.version.value,
            response.model_spec.signature_name) == ("multiclass-softmax", 1, "serving_default")
    status, answer = rest.post("/v1/models/multiclass-softmax:predict", {"inputs": IRIS_ROWS})
    assert status == 200
    np.testing.assert_array_equal(np.float32(answer["outputs"]["probabilities"]), probabilities)


def test_predict_for_a_regressor_by_version_and_label_with_an_output_filter(served):
    rest, stub, _, model_dir = served
    expected = zoo.load("relu-regression", version=1, model_dir=model_dir).predict(REGRESSION_ROWS)
    for spec in ({}, {"version": 1}, {"label": "stable"}, {"signature": "serving_default"}):
        response = stub.Predict(_predict_request("relu-regression", REGRESSION_ROWS, output_filter=["predictions"],
                                                 **spec), timeout=20)
        np.testing.assert_array_equal(tf.make_ndarray(response.outputs["predictions"]), expected)
    assert response.model_spec.version.value == 2  # no version: the newest
    status, answer = rest.post("/v1/models/relu-regression/labels/stable:predict",
                               {"instances": REGRESSION_ROWS.tolist()})
    np.testing.assert_array_equal(np.float32(answer["predictions"]), expected)


@pytest.mark.parametrize("request_of, code, message", [
    # server_core.cc / basic_manager.cc:139: an unknown model or version is NOT_FOUND
    (lambda: _predict_request("nope", np.float32(IRIS_ROWS)), "NOT_FOUND", "Servable not found for request: Latest(nope)"),
    (lambda: _predict_request("multiclass-softmax", np.float32(IRIS_ROWS), version=9), "NOT_FOUND",
     "Specific(multiclass-softmax, 9)"),
    # server_core.cc:890-891
    (lambda: _predict_request("relu-regression", REGRESSION_ROWS, label="nope"), "INVALID_ARGUMENT",
     "Unrecognized servable version label: nope"),
    # predict_util.cc:90-94
    (lambda: _predict_request("multiclass-softmax", np.float32(IRIS_ROWS), signature="x"), "FAILED_PRECONDITION",
     'Serving signature key "x" not found.'),
    # a bad input is INVALID_ARGUMENT: the wrong width, the wrong dtype, an extra input (predict_util.cc:51-72)
    (lambda: _predict_request("multiclass-softmax", np.float32([[1, 2, 3]])), "INVALID_ARGUMENT",
     "Row 0 has 3 values; multiclass-softmax takes 4"),
    (lambda: _predict_request("multiclass-softmax", np.float64(IRIS_ROWS)), "INVALID_ARGUMENT",
     "Expects arg[0] to be float but double is provided"),
    (lambda: _with_extra(_predict_request("multiclass-softmax", np.float32(IRIS_ROWS))), "INVALID_ARGUMENT",
     "input size does not match signature: 2!=1 len({extra,features}) != len({features}). Sent extra: {extra}"),
    # predict_util.cc:136-145
    (lambda: _predict_request("multiclass-softmax", np.float32(IRIS_ROWS), output_filter=["scores"]),
     "INVALID_ARGUMENT", "output tensor alias not found in signature: scores"),
])
def test_predict_errors_have_tensorflow_servings_codes(served, request_of, code, message):
    _, stub, _, _ = served
    with pytest.raises(grpc.RpcError) as caught:
        stub.Predict(request_of(), timeout=20)
    assert caught.value.code() == getattr(grpc.StatusCode, code)
    assert message in caught.value.details()


def _with_extra(request):
    request.inputs["extra"].CopyFrom(tf.make_tensor_proto([1.0]))
    return request


def test_classify_and_regress_answer_as_for_a_predict_signature(served):
    # classifier.cc:185-199 and regressor.cc:179-203 (the method-name check is off by default,
    # model_servers/server.h:102): our signatures have 3 outputs or no `inputs` input.
    _, stub, _, _ = served
    request = classification_pb2.ClassificationRequest()
    request.model_spec.name = "multiclass-softmax"
    with pytest.raises(grpc.RpcError) as caught:
        stub.Classify(request, timeout=20)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details() == "Expected one or two output Tensors, found 3"
    request = regression_pb2.RegressionRequest()
    request.model_spec.name = "relu-regression"
    with pytest.raises(grpc.RpcError) as caught:
        stub.Regress(request, timeout=20)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "No regression inputs found in SignatureDef" in caught.value.details()
    request.model_spec.name = "nope"
    with pytest.raises(grpc.RpcError) as caught:
        stub.Regress(request, timeout=20)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


def test_get_model_metadata_packs_every_signature_def_like_rest(served):
    # get_model_metadata_impl.cc:33-47 (the field must be signature_def), :55-66 (the map, packed)
    from google.protobuf import json_format

    rest, stub, _, model_dir = served
    request = get_model_metadata_pb2.GetModelMetadataRequest()
    request.model_spec.name = "multiclass-softmax"
    request.metadata_field.append("signature_def")
    response = stub.GetModelMetadata(request, timeout=20)
    assert (response.model_spec.name, response.model_spec.version.value) == ("multiclass-softmax", 1)
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    assert response.metadata["signature_def"].Unpack(signature_map)
    assert sorted(signature_map.signature_def) == ["__saved_model_init_op", "serving_default"]
    served_default = signature_map.signature_def["serving_default"]
    assert served_default.inputs["features"].dtype == tf.float32.as_datatype_enum
    assert [d.size for d in served_default.inputs["features"].tensor_shape.dim] == [-1, 4]
    rest_defs = rest.get("/v1/models/multiclass-softmax/metadata")[1]["metadata"]["signature_def"]
    assert json_format.MessageToDict(signature_map, preserving_proto_field_name=True,
                                     always_print_fields_with_no_presence=True) == rest_defs
    request.metadata_field[:] = ["other"]
    with pytest.raises(grpc.RpcError) as caught:
        stub.GetModelMetadata(request, timeout=20)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details() == "Metadata field other is not supported"


def test_get_model_status_answers_like_tensorflow_serving(served):
    # model_servers/get_model_status_impl.cc:76-108
    _, _, models, _ = served
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = "relu-regression"
    response = models.GetModelStatus(request, timeout=20)
    assert [(s.version, s.state, s.status.error_code, s.status.error_message)
            for s in response.model_version_status] == [
        (2, get_model_status_pb2.ModelVersionStatus.AVAILABLE, 0, ""),
        (1, get_model_status_pb2.ModelVersionStatus.AVAILABLE, 0, ""),
    ]
    request.model_spec.version.value = 1
    assert [s.version for s in models.GetModelStatus(request, timeout=20).model_version_status] == [1]
    for name, version, message in (("relu-regression", 7, "Could not find version 7 of model relu-regression"),
                                   ("nope", None, "Could not find any versions of model nope")):
        request = get_model_status_pb2.GetModelStatusRequest()
        request.model_spec.name = name
        if version is not None:
            request.model_spec.version.value = version
        with pytest.raises(grpc.RpcError) as caught:
            models.GetModelStatus(request, timeout=20)
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND and caught.value.details() == message


@pytest.fixture(scope="module")
def table_export(tmp_path_factory):
    """`categorical-features/1` (penguins: text columns and gaps, one named input per column)."""
    from recipes.run import main

    root = tmp_path_factory.mktemp("table") / "models"
    assert main(["categorical-features", "--epochs", "2", "--output-dir", str(root)]) == 0
    return root


def test_a_table_model_answers_the_same_over_grpc_rest_and_the_zoo(table_export):
    model = zoo.load("categorical-features", model_dir=table_export)
    rows = [["Biscoe", 45.2, 14.8, 212.0, 5200.0, "female", 2008.0],
            ["Dream", 39.5, 17.8, 188.0, 3300.0, None, 2007.0],
            ["Torgersen", None, 18.1, 186.0, 3450.0, "male", 2009.0]]
    named = [dict(zip(model.feature_names, r)) for r in rows]
    expected = model.predict_proba(rows)
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "categorical-features"
    for i, (name, (dtype, _)) in enumerate(model.signature_inputs.items()):
        column = [r[model.feature_names.index(name)] for r in rows]
        values = [("" if v is None else v) for v in column] if dtype == "string" else \
            [np.nan if v is None else v for v in column]
        request.inputs[name].CopyFrom(tf.make_tensor_proto(np.asarray(values, np.float32 if dtype == "float32"
                                                                      else object)))
    with running(table_export, grpc_port=0) as server:
        with grpc.insecure_channel(f"127.0.0.1:{server.grpc.port}") as channel:
            response = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, timeout=20)
        np.testing.assert_array_equal(tf.make_ndarray(response.outputs["probabilities"]), expected)
        status, answer = Client(server.server_address[1]).post(
            "/v1/models/categorical-features:predict", {"instances": named})
        assert status == 200
        np.testing.assert_array_equal(np.float32([p["probabilities"] for p in answer["predictions"]]), expected)
        del request.inputs["island"]  # predict_util.cc:51-72: every signature input, or INVALID_ARGUMENT
        with grpc.insecure_channel(f"127.0.0.1:{server.grpc.port}") as channel:
            with pytest.raises(grpc.RpcError) as caught:
                prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, timeout=20)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "Missing but required: {island}" in caught.value.details()
