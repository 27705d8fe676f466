"""`models.serve` over real HTTP on localhost: TensorFlow Serving's REST API, errors, versions, load."""

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from models import serve, zoo

from serving_fixtures import (  # noqa: F401 (fixtures)
    IRIS_ROWS, MAX_BODY, TIMEOUT, Client, available, client, exports, model_dir, raw, running, server,
)

REPO = Path(__file__).resolve().parents[1]


def test_status_matches_tensorflow_servings_shape(client):
    assert client.get("/v1/models/multiclass-softmax") == (200, {"model_version_status": [available(1)]})
    assert client.get("/v1/models/multiclass-softmax/versions/1") == (200, {"model_version_status": [available(1)]})


def test_metadata_lists_every_signature_of_the_savedmodel_as_tensorflow_prints_them(client, model_dir):
    # get_model_metadata_impl.cc:56-58 copies every signature_def of the meta graph (so
    # __saved_model_init_op too); http_rest_api_util.cc:147-158 prints it with field names as in the
    # .proto and fields without presence always printed.
    from google.protobuf import json_format
    from tensorflow.core.protobuf import saved_model_pb2

    for name in ("multiclass-softmax", "relu-regression"):
        status, answer = client.get(f"/v1/models/{name}/versions/1/metadata")
        assert status == 200
        assert answer["model_spec"] == {"name": name, "signature_name": "", "version": "1"}
        saved = saved_model_pb2.SavedModel()
        saved.ParseFromString((model_dir / name / "1" / "saved_model.pb").read_bytes())
        truth = {
            key: json_format.MessageToDict(value, preserving_proto_field_name=True,
                                           always_print_fields_with_no_presence=True)
            for key, value in saved.meta_graphs[0].signature_def.items()
        }
        assert sorted(truth) == ["__saved_model_init_op", "serving_default"]
        assert answer["metadata"]["signature_def"]["signature_def"] == truth
    assert client.get("/v1/models/relu-regression/metadata")[1]["model_spec"]["version"] == "1"


def test_row_and_columnar_predicts_equal_zoo_predictions(client, model_dir):
    model = zoo.load("multiclass-softmax", model_dir=model_dir)
    probabilities, labels = model.predict_proba(IRIS_ROWS), model.predict(IRIS_ROWS)

    status, answer = client.post("/v1/models/multiclass-softmax:predict", {"instances": IRIS_ROWS})
    assert status == 200 and len(answer["predictions"]) == 3
    for row, p, label in zip(answer["predictions"], probabilities, labels):
        assert sorted(row) == ["class_ids", "labels", "probabilities"]
        np.testing.assert_array_equal(np.float32(row["probabilities"]), p)
        assert row["labels"] == label and model.class_names[row["class_ids"]] == label

    named = [dict(zip(model.feature_names, r)) for r in IRIS_ROWS]
    columns = {f: [r[i] for r in IRIS_ROWS] for i, f in enumerate(model.feature_names)}
    same_rows = [{"inputs": IRIS_ROWS}, {"inputs": {"features": IRIS_ROWS}}, {"inputs": columns}]
    for body in same_rows:
        status, answer = client.post("/v1/models/multiclass-softmax:predict", body)
        assert status == 200, answer
        outputs = answer["outputs"]
        np.testing.assert_array_equal(np.float32(outputs["probabilities"]), probabilities)
        assert outputs["labels"] == list(labels)
        assert outputs["class_ids"] == probabilities.argmax(axis=1).tolist()
    for instances in (named, [{"features": r} for r in IRIS_ROWS]):
        body = {"instances": instances, "signature_name": "serving_default"}
        status, answer = client.post("/v1/models/multiclass-softmax/versions/1:predict", body)
        assert status == 200 and [r["labels"] for r in answer["predictions"]] == list(labels)

    regression = zoo.load("relu-regression", model_dir=model_dir)
    rows = (np.random.default_rng(0).normal(size=(4, 10)) * 0.05).tolist()
    status, answer = client.post("/v1/models/relu-regression:predict", {"instances": rows})
    assert status == 200  # one named output: a plain list, as TensorFlow Serving answers
    np.testing.assert_array_equal(np.float32(answer["predictions"]), regression.predict(rows))
    status, answer = client.post("/v1/models/relu-regression:predict", {"inputs": rows})
    np.testing.assert_array_equal(np.float32(answer["outputs"]), regression.predict(rows))


def _export_version_2(model_dir):
    """Exports a second, different version of multiclass-softmax (output layer changed)."""
    import keras

    from models.export import savedmodel as export
    from models.lessons.activations import dense_layers

    v1 = zoo.load("multiclass-softmax", version=1, model_dir=model_dir)
    model = keras.models.load_model(v1.path / "model.keras")
    output = dense_layers(model)[-1]  # the recipe's Sequential sits behind the front-end
    kernel, bias = output.get_weights()
    output.set_weights([kernel * 3.0, bias + np.arange(len(bias), dtype=np.float32)])
    keep = {k: v1.metadata[k] for k in ("recipe", "feature_names", "target")}
    path = export.export(model, output_dir=model_dir, name="multiclass-softmax", task="multiclass",
                         class_names=v1.class_names, metadata=keep)
    assert path.name == "2"
    return zoo.load("multiclass-softmax", version=2, model_dir=model_dir)


def test_a_new_version_is_picked_up_while_running_and_versions_route(client, model_dir):
    url = "/v1/models/multiclass-softmax"
    v1 = zoo.load("multiclass-softmax", version=1, model_dir=model_dir).predict_proba(IRIS_ROWS)
    before = client.post(f"{url}:predict", {"inputs": IRIS_ROWS})[1]["outputs"]["probabilities"]
    np.testing.assert_array_equal(np.float32(before), v1)

    v2 = _export_version_2(model_dir).predict_proba(IRIS_ROWS)
    assert not np.allclose(v1, v2)
    newest = client.post(f"{url}:predict", {"inputs": IRIS_ROWS})[1]["outputs"]["probabilities"]
    np.testing.assert_array_equal(np.float32(newest), v2)  # no restart
    for version, expected in ((1, v1), (2, v2)):
        answer = client.post(f"{url}/versions/{version}:predict", {"inputs": IRIS_ROWS})[1]
        np.testing.assert_array_equal(np.float32(answer["outputs"]["probabilities"]), expected)
    assert client.get(url) == (200, {"model_version_status": [available(2), available(1)]})
    assert client.get(f"{url}/metadata")[1]["model_spec"]["version"] == "2"


@pytest.mark.parametrize(
    "path, body, status, message",
    [  # TensorFlow Serving's wording where it has one (util/json_tensor.cc, server_core.cc, ...)
        ("/v1/models/multiclass-softmax:predict", b'{"instances": [[1, 2', 400, "JSON Parse error"),
        ("/v1/models/multiclass-softmax:predict", b"[1, 2]", 400, "Is not object"),
        ("/v1/models/multiclass-softmax:predict", {"instances": IRIS_ROWS, "inputs": IRIS_ROWS}, 400,
         "expecting only one of 'inputs' or 'instances'"),
        ("/v1/models/multiclass-softmax:predict", {"rows": IRIS_ROWS}, 400, "Missing 'inputs' or 'instances' key"),
        ("/v1/models/multiclass-softmax:predict", {"instances": [[1, 2, 3]]}, 400,
         "Row 0 has 3 values; multiclass-softmax takes 4"),
        ("/v1/models/multiclass-softmax:predict", {"instances": [[1, 2, "3", 4]]}, 400,
         "Row 0, feature 'petal length \\(cm\\)': '3' is not a number"),
        ("/v1/models/multiclass-softmax:predict", {"inputs": {"sepal length (cm)": [1], "colour": [2]}}, 400,
         "lacks column\\(s\\) 'sepal width \\(cm\\)'"),
        ("/v1/models/multiclass-softmax:predict", {"inputs": {"colour": [2]}}, 400,
         "Missing named input: features in 'inputs' object"),
        ("/v1/models/multiclass-softmax:predict", {"instances": []}, 400, "No values in 'instances' array"),
        ("/v1/models/multiclass-softmax:predict", {"instances": IRIS_ROWS, "signature_name": 100}, 400,
         "'signature_name' key must be a string value"),
        ("/v1/models/multiclass-softmax:predict", {"instances": IRIS_ROWS, "signature_name": "classify_x"},
         400, 'Serving signature name: "classify_x" not found in signature def'),
        ("/v1/models/multiclass-softmax:predict", {"instances": IRIS_ROWS, "signature_name": "__saved_model_init_op"},
         400, "Failed to get input map for signature: __saved_model_init_op"),
        ("/v1/models/multiclass-softmax:classify", {"examples": [{}]}, 400, "Expected one or two output Tensors, found 3"),
        ("/v1/models/relu-regression:regress", {"examples": [{}]}, 400, "No regression inputs found in SignatureDef"),
        ("/v1/models/nope:predict", {"instances": IRIS_ROWS}, 404,
         "Servable not found for request: Latest\\(nope\\) .*multiclass-softmax, relu-regression"),
        ("/v1/models/multiclass-softmax/versions/7:predict", {"instances": IRIS_ROWS}, 404,
         "Servable not found for request: Specific\\(multiclass-softmax, 7\\)"),
        ("/v1/models/multiclass-softmax/versions/7", None, 404, "Could not find version 7 of model multiclass-softmax"),
        ("/v1/models/nope", None, 404, "Could not find any versions of model nope"),
        ("/v1/models/nope/metadata", None, 404, "Latest\\(nope\\)"),
        ("/v1/models/../../etc:predict", {"instances": IRIS_ROWS}, 400, "Malformed request"),
        ("/v1/models/%2E%2E:predict", {"instances": IRIS_ROWS}, 404, "Servable not found"),
        ("/v2/anything", None, 404, "Malformed request: GET /v2/anything"),
        ("/v1/models/multiclass-softmax:predict", MAX_BODY + 1, 413,
         f"body is {MAX_BODY + 1} bytes; this server takes at most {MAX_BODY}"),
    ],
)
def test_each_error_is_json_with_its_status_and_the_server_lives_on(client, path, body, status, message):
    body = b"x" * body if isinstance(body, int) else body
    got_status, answer = client.request("GET" if body is None else "POST", path, body)
    assert got_status == status
    assert list(answer) == ["error"]
    assert "Traceback" not in answer["error"]
    import re

    assert re.search(message, answer["error"]), answer["error"]
    assert Client(client.port).get("/v1/models/multiclass-softmax")[0] == 200


def test_malformed_http_gets_json_errors(server):
    port = server.server_address[1]
    line, _, body = raw(port, b"NONSENSE\r\n\r\n")
    assert " 400 " in line and "Bad request line" in json.loads(body)["error"]
    line, _, body = raw(port, b"POST /v1/models/multiclass-softmax:predict HTTP/1.1\r\nHost: x\r\n"
                              b"Content-Length: 99999999\r\nExpect: 100-continue\r\n\r\n")
    assert " 413 " in line  # refused before the body is sent
    line, _, body = raw(port, b"POST /v1/models/multiclass-softmax:predict HTTP/1.1\r\nHost: x\r\n"
                              b"Content-Length: ten\r\n\r\n")
    assert " 400 " in line and "Content-Length must be an integer" in json.loads(body)["error"]
    assert Client(port).get("/v1/models/multiclass-softmax")[0] == 200


@pytest.mark.parametrize("batching", ["auto", "on"])
def test_eight_concurrent_clients_times_fifty_requests_all_answered_correctly(model_dir, batching):
    model = zoo.load("multiclass-softmax", model_dir=model_dir)
    rng = np.random.default_rng(1)
    rows = (np.array(IRIS_ROWS[0]) + rng.normal(scale=1.5, size=(8, 50, 4))).round(3)
    expected = model.predict(rows.reshape(-1, 4)).reshape(8, 50)
    results = [[None] * 50 for _ in range(8)]
    failures = []

    def work(i):
        try:
            c = Client(port)
            for j in range(50):
                status, answer = c.post("/v1/models/multiclass-softmax:predict", {"instances": [rows[i, j].tolist()]})
                results[i][j] = answer["predictions"][0]["labels"] if status == 200 else answer
        except Exception as error:  # reported below; a thread must not die silently
            failures.append(repr(error))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    with running(model_dir, batching=batching) as server:
        port = server.server_address[1]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
    assert not failures and not any(t.is_alive() for t in threads)
    assert results == expected.tolist()
    assert len(set(expected.ravel())) > 1  # the rows reach different classes


def test_batcher_joins_waiting_requests_into_one_call():
    calls = []
    release = threading.Event()

    def run(x):
        calls.append(len(x["x"]))
        release.wait(TIMEOUT)  # the first call holds the model while the others queue
        return {"double": x["x"] * 2}

    batcher = serve.Batcher(run)
    answers = {}
    threads = [threading.Thread(target=lambda i=i: answers.__setitem__(i, batcher({"x": np.full((1, 2), i)})))
               for i in range(6)]
    threads[0].start()
    while not calls:
        time.sleep(0.001)
    for t in threads[1:]:
        t.start()
    while batcher._queue.qsize() < 5:
        time.sleep(0.001)
    release.set()
    for t in threads:
        t.join(timeout=TIMEOUT)
    batcher.close()
    assert calls == [1, 5]  # one call alone, then the five that waited, together
    for i in range(6):
        np.testing.assert_array_equal(answers[i]["double"], np.full((1, 2), 2 * i))


def test_command_line_serves_logs_each_request_and_stops_on_sigterm_and_sigint(model_dir):
    for signum in (signal.SIGTERM, signal.SIGINT):
        process = subprocess.Popen(
            [sys.executable, "-m", "models.serve", "--model-dir", str(model_dir), "--port", "0"],
            cwd=REPO, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        try:
            banner = ""
            deadline = time.monotonic() + 60
            while "Serving" not in banner and time.monotonic() < deadline:
                banner = process.stderr.readline()
            assert "http://127.0.0.1:" in banner, banner  # this machine only, by default
            port = int(banner.split("http://127.0.0.1:")[1].split("/")[0])
            c = Client(port)
            assert c.get("/v1/models/relu-regression")[0] == 200
            assert c.post("/v1/models/relu-regression:predict", {"instances": [[0.0] * 10]})[0] == 200
            process.send_signal(signum)
            _, rest = process.communicate(timeout=TIMEOUT)
        finally:
            if process.poll() is None:
                process.kill()
        assert process.returncode == 0
        lines = [ln for ln in rest.splitlines() if "/v1/models/" in ln]
        assert len(lines) == 2, rest
        assert '"GET /v1/models/relu-regression" 200' in lines[0]
        assert '"POST /v1/models/relu-regression:predict" 200' in lines[1] and "rows=1" in lines[1]
        assert rest.rstrip().endswith("Stopped.")


def test_make_server_checks_its_arguments(model_dir, tmp_path):
    with pytest.raises(ValueError, match=r"`model_dir` must be a folder of exported models. Received: model_dir="):
        serve.make_server(tmp_path / "missing", port=0)
    with pytest.raises(ValueError, match=r"`batching` must be one of auto, on, off. Received: batching='yes'"):
        serve.make_server(model_dir, port=0, batching="yes")
    with pytest.raises(ValueError, match=r"`max_body_bytes` must be an integer >= 1. Received: max_body_bytes=0"):
        serve.make_server(model_dir, port=0, max_body_bytes=0)


def test_a_version_that_cannot_be_loaded_is_reported_not_served(client, model_dir):
    broken = model_dir / "relu-regression" / "2"
    broken.mkdir()
    (broken / "metadata.json").write_text("{}")
    status, answer = client.get("/v1/models/relu-regression")
    assert status == 200
    newest, oldest = answer["model_version_status"]
    assert oldest == available(1)
    assert newest["version"] == "2" and newest["state"] == "END"
    assert newest["status"]["error_code"] == "UNKNOWN" and "is not an export's metadata" in newest["status"]["error_message"]
    status, answer = client.post("/v1/models/relu-regression:predict", {"instances": [[0.0] * 10]})
    assert status == 404 and "version 2 of 'relu-regression' cannot be loaded" in answer["error"]
    assert client.post("/v1/models/relu-regression/versions/1:predict", {"instances": [[0.0] * 10]})[0] == 200


def test_a_cached_version_listing_sees_a_new_version_folder(client, model_dir, monkeypatch):
    from models.serving import store

    monkeypatch.setattr(store, "SETTLED_SECONDS", 0.0)  # reuse every listing at once
    url = "/v1/models/relu-regression"
    assert client.get(url) == (200, {"model_version_status": [available(1)]})
    assert client.get(url) == (200, {"model_version_status": [available(1)]})  # from the cache
    time.sleep(0.05)  # past the file system's timestamp granularity
    shutil.copytree(model_dir / "relu-regression" / "1", model_dir / "relu-regression" / "2")
    assert client.get(url) == (200, {"model_version_status": [available(2), available(1)]})


def test_the_rest_server_answers_onnx_exports_without_importing_tensorflow(model_dir):
    code = (
        "import json, sys, urllib.request\n"
        "from models import serve\n"
        f"with serve.running({str(model_dir)!r}) as server:\n"
        "    url = f'http://127.0.0.1:{server.server_address[1]}/v1/models/multiclass-softmax'\n"
        "    body = json.dumps({'instances': [[5.1, 3.5, 1.4, 0.2]]}).encode()\n"
        "    answer = json.load(urllib.request.urlopen(urllib.request.Request(url + ':predict', body)))\n"
        "    json.load(urllib.request.urlopen(url + '/metadata'))\n"
        "print(answer['predictions'][0]['labels'], [m for m in ('tensorflow', 'keras') if m in sys.modules])\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    label = zoo.load("multiclass-softmax", model_dir=model_dir).predict(IRIS_ROWS[:1])[0]
    assert done.stdout.split() == [label, "[]"]
