"""`models.serve` against TensorFlow Serving's own source, one case per behaviour, over real HTTP.

Each test cites the file and line of `tensorflow/serving` (commit 9d981c5c, 2026-07-30) it follows;
paths are under `tensorflow_serving/`.
"""

import gzip
import json
import re

import numpy as np
import pytest

from models import zoo
from models.serving.json_tensor import float_texts

from serving_fixtures import (  # noqa: F401 (fixtures)
    IRIS_ROWS, Client, available, client, exports, model_dir, raw, running, server,
)

PREDICT = "/v1/models/multiclass-softmax:predict"


def _post_raw(port, head, body):
    line, headers, answer = raw(port, f"POST {PREDICT} HTTP/1.1\r\nHost: x\r\n{head}\r\n".encode() + body)
    return line, headers, answer


def test_a_chunked_body_is_read(server, model_dir):
    # http_server.cc:156-160 reads the body with ReadRequestBytes until it is exhausted, whatever its
    # framing; evhttp (util/net_http/server/internal/evhttp_request.cc:167-204) has de-chunked it.
    port = server.server_address[1]
    body = json.dumps({"instances": IRIS_ROWS}).encode()
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 7]), body[i:i + 7]) for i in range(0, len(body), 7))
    line, _, answer = _post_raw(port, "Transfer-Encoding: chunked\r\nConnection: close\r\n",
                                chunked + b"0\r\n\r\n")
    assert " 200 " in line
    labels = zoo.load("multiclass-softmax", model_dir=model_dir).predict(IRIS_ROWS)
    assert [p["labels"] for p in json.loads(answer)["predictions"]] == list(labels)


def test_a_gzip_body_is_decompressed(server, model_dir):
    # evhttp_request.cc:182-183 and 261-266: a Content-Encoding containing "gzip" is uncompressed
    # (auto_uncompress_input_ defaults to true, util/net_http/server/public/httpserver_interface.h:123).
    port = server.server_address[1]
    body = gzip.compress(json.dumps({"inputs": IRIS_ROWS}).encode())
    line, _, answer = _post_raw(port, f"Content-Encoding: gzip\r\nContent-Length: {len(body)}\r\n"
                                      "Connection: close\r\n", body)
    assert " 200 " in line
    expected = zoo.load("multiclass-softmax", model_dir=model_dir).predict_proba(IRIS_ROWS)
    np.testing.assert_array_equal(np.float32(json.loads(answer)["outputs"]["probabilities"]), expected)
    line, _, answer = _post_raw(port, "Content-Encoding: gzip\r\nContent-Length: 5\r\nConnection: close\r\n",
                                b"hello")
    assert " 400 " in line and "cannot be decompressed" in json.loads(answer)["error"]


def test_options_is_a_cors_preflight(model_dir):
    # http_server.cc:170-177: OPTIONS with an http(s) Origin is OK (200), without one
    # FailedPrecondition (400, http_server.cc:68-69); :183-185 adds AddCORSHeaders
    # (http_rest_api_util.cc:40-44) when CORS support is on.
    with running(model_dir, enable_cors=True) as httpd:
        port = httpd.server_address[1]
        line, headers, body = raw(port, f"OPTIONS {PREDICT} HTTP/1.1\r\nHost: x\r\nOrigin: https://app.example\r\n"
                                        "Access-Control-Request-Method: POST\r\nConnection: close\r\n\r\n".encode())
        assert " 200 " in line and body == b""
        assert "Access-Control-Allow-Origin: *" in headers
        assert "Access-Control-Allow-Methods: POST, GET" in headers
        assert "Access-Control-Allow-Headers: Content-Type" in headers
        line, _, body = raw(port, f"OPTIONS {PREDICT} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        assert " 400 " in line and "Origin header is missing in CORS preflight" in json.loads(body)["error"]


def test_version_labels_route_status_and_predict(exports, tmp_path):
    # http_rest_api_util.cc:31-34: /labels/LABEL in both path patterns; server_core.cc:853-862 maps a
    # label to its version, :890-891 refuses an unknown one (InvalidArgument: 400,
    # http_rest_api_handler_test.cc:310-319); get_model_status_impl.cc:82 narrows status by
    # model_spec.version only, so a label lists every version (as the handler test's lone version does).
    import shutil

    model_dir = tmp_path / "m"
    shutil.copytree(exports, model_dir)
    shutil.copytree(model_dir / "relu-regression" / "1", model_dir / "relu-regression" / "2")
    with running(model_dir, version_labels=["relu-regression:stable=1", "relu-regression:canary=2"]) as httpd:
        c = Client(httpd.server_address[1])
        rows = [[0.01 * i for i in range(10)]]
        expected = zoo.load("relu-regression", version=1, model_dir=model_dir).predict(rows)
        for label in ("stable", "canary"):
            status, answer = c.post(f"/v1/models/relu-regression/labels/{label}:predict", {"instances": rows})
            assert status == 200
            np.testing.assert_array_equal(np.float32(answer["predictions"]), expected)
        status, answer = c.get("/v1/models/relu-regression/labels/stable")
        assert (status, answer) == (200, {"model_version_status": [available(2), available(1)]})
        status, answer = c.get("/v1/models/relu-regression/labels/stable/metadata")
        assert status == 200 and answer["model_spec"]["version"] == "1"
        status, answer = c.get("/v1/models/relu-regression/labels/canary/metadata")
        assert status == 200 and answer["model_spec"]["version"] == "2"
        status, answer = c.post("/v1/models/relu-regression/labels/nope:predict", {"instances": rows})
        assert status == 400 and answer["error"] == "Unrecognized servable version label: nope"
        status, answer = c.post("/v1/models/relu-regression/labels/stable%20x:predict", {"instances": rows})
        assert status == 400 and answer["error"] == "Unrecognized servable version label: stable x"  # URL-decoded


@pytest.mark.parametrize("spec, message", [
    ("relu-regression:stable", "must be NAME:LABEL=VERSION"),
    ("relu-regression:stable=9", "names version 9 of 'relu-regression', which is not under"),
])
def test_a_bad_version_label_is_refused_at_start(model_dir, spec, message):
    # server_core.cc refuses a label for a version it does not serve (unless
    # --allow_version_labels_for_unavailable_models, g3doc/serving_config.md:196-199).
    from models import serve

    with pytest.raises(ValueError, match=re.escape(message)):
        serve.make_server(model_dir, port=0, version_labels=[spec])


def test_nan_and_infinity_tokens_are_taken_and_written_back(client, model_dir):
    # util/json_tensor.cc:484 parses with kParseNanAndInfFlag (json_tensor_test.cc:460-466 sends NaN
    # and Infinity); out-of-range floats become inf (json_tensor_test.cc:224-259); json_tensor.cc:163-166
    # writes NaN and ±Infinity back. Our exports read NaN as a missing value (imputed inside the model).
    model = zoo.load("multiclass-softmax", model_dir=model_dir)
    rows = [[5.1, 3.5, float("nan"), 0.2], IRIS_ROWS[1]]
    status, answer = client.post(PREDICT, {"instances": rows})  # json.dumps writes NaN
    assert status == 200
    got = np.float32([p["probabilities"] for p in answer["predictions"]])
    np.testing.assert_array_equal(got, model.predict_proba([[5.1, 3.5, None, 0.2], IRIS_ROWS[1]]))
    status, answer = client.post(PREDICT, b'{"inputs": [[Infinity, -Infinity, 1e39, 0.2]]}')
    assert status == 200 and len(answer["outputs"]["labels"]) == 1
    regression = zoo.load("relu-regression", model_dir=model_dir)
    status, answer = client.post("/v1/models/relu-regression:predict", b'{"instances": [[NaN,0,0,0,0,0,0,0,0,0]]}')
    assert status == 200
    np.testing.assert_array_equal(np.float32(answer["predictions"]), regression.predict([[None] + [0] * 9]))


def test_extra_keys_in_columnar_inputs_are_ignored(client, model_dir):
    # util/json_tensor.cc:631-640: FillTensorMapFromInputsMap looks up each of the signature's inputs
    # in the `inputs` object; other keys are never read.
    model = zoo.load("multiclass-softmax", model_dir=model_dir)
    expected = model.predict_proba(IRIS_ROWS)
    columns = {f: [r[i] for r in IRIS_ROWS] for i, f in enumerate(model.feature_names)}
    for inputs in ({"features": IRIS_ROWS, "extra": [1, 2], "debug": "yes"}, {**columns, "colour": ["red"]}):
        status, answer = client.post(PREDICT, {"inputs": inputs})
        assert status == 200, answer
        np.testing.assert_array_equal(np.float32(answer["outputs"]["probabilities"]), expected)


@pytest.mark.parametrize("method, path, message", [
    # http_rest_api_handler.cc:74-75 starts from "Malformed request: METHOD PATH" and only a GET or POST
    # matching its pattern (http_rest_api_util.cc:31-34, 100-108) replaces it (handler.cc:85-105);
    # InvalidArgument is 400 (http_server.cc:56-57). Cases from http_rest_api_handler_test.cc:179-258.
    ("GET", PREDICT, "Malformed request: GET /v1/models/multiclass-softmax:predict"),  # test.cc:207-210
    ("POST", "/v1/models/multiclass-softmax", "Malformed request: POST"),
    ("POST", "/v1/models/multiclass-softmax/metadata", "Malformed request: POST"),  # test.cc:236-239
    ("PUT", PREDICT, "Malformed request: PUT"),
    ("DELETE", "/v1/models/multiclass-softmax", "Malformed request: DELETE"),
    ("POST", "/v1/models", "Malformed request: POST /v1/models"),  # test.cc:202-205
    ("GET", "/v1/models", "Missing model name in request."),  # handler.cc:187-189, test.cc:193-196
    ("GET", "/v1/models/multiclass-softmax/versions/abc", "Malformed request"),
    ("POST", "/v1/models/multiclass-softmax/versions/HELLO:predict", "Malformed request"),  # test.cc:222-226
    ("POST", "/v1/models/multiclass-softmax/versions/1/labels/x:predict", "Malformed request"),  # test.cc:247-251
    ("POST", "/v1/models/multiclass-softmax/versions/18446744073709551615:predict",
     "Failed to convert version: 18446744073709551615 to numeric."),  # util.cc:115-120, test.cc:228-234
    ("GET", "/v1/models/debug/model_name", "Malformed request"),  # test.cc:197-200
    ("GET", "/v1/models/multiclass-softmax/", "Malformed request"),
])
def test_paths_and_methods_it_does_not_take_are_malformed_requests(client, method, path, message):
    status, answer = client.request(method, path, b"{}" if method != "GET" else None)
    assert (status, list(answer)) == (400, ["error"])
    assert message in answer["error"]


def test_paths_match_case_insensitively(client):
    # http_rest_api_util.cc:31-34: both patterns start with (?i).
    assert client.get("/V1/MODELS/multiclass-softmax/VERSIONS/1") == (200, {"model_version_status": [available(1)]})
    status, answer = client.post("/v1/Models/multiclass-softmax:predict", {"instances": IRIS_ROWS})
    assert status == 200 and len(answer["predictions"]) == 3


def test_floats_are_written_with_at_most_nine_significant_digits(client, model_dir):
    # util/json_tensor.cc:125-170 WriteDecimal: StrCat's six digits when they read back to the same
    # float, else max_digits10 (9 for float32); ".0" for whole numbers. The cases of
    # json_tensor_test.cc:924-949 and :951-973:
    cases = np.float32([9000000, 999999, 0.5, 0.0003, 0.00003, 555557.5, np.nan, np.inf, 3, -np.inf])
    assert float_texts(cases).tolist() == [
        "9e+06", "999999.0", "0.5", "0.0003", "3e-05", "555557.5", "NaN", "Infinity", "3.0", "-Infinity"]
    status, answer = client.post(PREDICT, {"inputs": IRIS_ROWS})
    assert status == 200
    model = zoo.load("multiclass-softmax", model_dir=model_dir)
    np.testing.assert_array_equal(np.float32(answer["outputs"]["probabilities"]), model.predict_proba(IRIS_ROWS))
    raw_answer = client.connection  # the same numbers, as text: no float64 noise digits
    raw_answer.request("POST", PREDICT, body=json.dumps({"inputs": IRIS_ROWS}))
    text = raw_answer.getresponse().read().decode()
    numbers = re.findall(r"-?\d+\.\d+(?:e[-+]\d+)?", text)
    assert numbers and all(len(re.sub(r"[-.]|e.*$", "", n).lstrip("0")) <= 9 for n in numbers), numbers


def test_an_instance_object_must_name_the_signatures_input_or_every_feature(client, model_dir):
    # util/json_tensor.cc:551-572: object instances are keyed by the signature's inputs ({"features": row});
    # ours also takes {feature_name: value} (README, "Differences").
    model = zoo.load("multiclass-softmax", model_dir=model_dir)
    for instances in ([{"features": r} for r in IRIS_ROWS], [dict(zip(model.feature_names, r)) for r in IRIS_ROWS]):
        status, answer = client.post(PREDICT, {"instances": instances})
        assert status == 200 and [p["labels"] for p in answer["predictions"]] == list(model.predict(IRIS_ROWS))
