"""Real tables end to end: text categories, blanks, odd column names, padded cells.

A table like a passenger list (a `sex` column of words, a class coded 1/2/3, blank ages, a
column name with a space and one with a dot) trains with three recipes; the SavedModel, its
ONNX file through the zoo, and the REST server give the same outputs on held-out rows that
include missing values and a category never seen in training; `models.predict` writes a
CSV back with the zoo's predictions.
"""

import csv
import http.client
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from models import predict as batch
from models import serve, zoo
from models.data import encoding, tables
from models.data.prepared import prepare

REPO = Path(__file__).resolve().parents[1]
HEADER = ["age", "sex", "class", "fare usd", "cabin.deck", "embarked", "survived", "price"]
FEATURES = ["age", "sex", "class", "fare usd", "cabin.deck"]


def passengers(path, n=400, seed=0):
    """A passenger table: text columns, blank and `NA` cells, a class coded 1/2/3, padded cells,
    rows without a target; `survived` (2 classes), `embarked` (3), `price` (> 0) as targets."""
    rng = np.random.default_rng(seed)
    with open(path, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(HEADER)
        for i in range(n):
            age, sex, cls = rng.normal(35, 12), rng.choice(["male", "female"]), int(rng.integers(1, 4))
            fare, deck = rng.gamma(2, 20) * (4 - cls), rng.choice(["A", "B", "C", "D", ""])
            logit = 2.0 * (sex == "female") - 1.0 * (cls - 2) - 0.03 * (age - 35)
            survived = "yes" if rng.random() < 1 / (1 + np.exp(-logit)) else "no"
            embarked = ["S", "C", "Q"][cls - 1] if rng.random() < 0.8 else rng.choice(["S", "C", "Q"])
            price = 10 + 5 * cls + 0.1 * fare + 3 * (sex == "male") + rng.normal()
            cell = f"{age:.1f}" if rng.random() > 0.15 else rng.choice(["", "NA", " "])
            out.writerow([cell, f" {sex} " if i % 7 == 0 else sex, cls, f"{fare:.2f}", deck,
                          embarked, survived if i % 50 else "", f"{price:.2f}"])
    return path


# Held-out rows as an app sends them: a gap of every kind, and a deck never seen in training.
ROWS = [
    {"age": 39, "sex": "male", "class": "3", "fare usd": 8.05, "cabin.deck": ""},
    {"age": None, "sex": "female", "class": 1, "fare usd": 71.3, "cabin.deck": "C"},
    {"age": float("nan"), "sex": " female ", "class": "2", "fare usd": 13.0, "cabin.deck": None},
    {"age": 4, "sex": "NA", "class": "1", "fare usd": None, "cabin.deck": "Z (never seen)"},
    {"age": "", "sex": "", "class": None, "fare usd": "NA", "cabin.deck": "A"},
]

RECIPES = {  # recipe: (target, the other targets to drop)
    "binary-sigmoid": ("survived", ["embarked", "price"]),
    "multiclass-softmax": ("embarked", ["survived", "price"]),
    "relu-regression": ("price", ["survived", "embarked"]),
}


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    from recipes.run import main

    root = tmp_path_factory.mktemp("tables")
    table = passengers(root / "passengers.csv")
    for recipe, (target, drop) in RECIPES.items():
        words = [w for column in drop for w in ("--drop", column)]
        assert main([recipe, "--data", str(table), "--target", target, *words,
                     "--categorical", "class", "--epochs", "8", "--output-dir",
                     str(root / "models"), "--report", str(root / f"{recipe}.json")]) == 0
    return root


def _signature_outputs(folder, model):
    import tensorflow as tf

    signature = tf.saved_model.load(str(folder)).signatures["serving_default"]
    feed = model.feed(ROWS)
    got = signature(**{k: tf.constant(v.tolist() if v.dtype == object else v)
                       for k, v in feed.items()})
    return {k: v.numpy() for k, v in got.items()}


@pytest.mark.parametrize("recipe", list(RECIPES))
def test_savedmodel_onnx_and_rest_agree_on_gaps_and_unseen_categories(recipe, exports):
    folder = exports / "models" / recipe / "1"
    metadata = json.loads((folder / "metadata.json").read_text())
    assert metadata["inputs"] == "columns"
    assert metadata["onnx"]["file"] == "model.onnx", metadata["onnx"]
    assert metadata["onnx"]["check_rows"] >= 17  # held-out rows + an all-missing + an unseen row
    onnx = zoo.load(folder, backend="onnx")
    saved = zoo.load(folder, backend="savedmodel")
    expected = _signature_outputs(folder, onnx)
    names = ["predictions"] if recipe == "relu-regression" else ["probabilities", "class_ids"]
    for name in names:
        np.testing.assert_allclose(onnx.outputs(ROWS)[name], expected[name], atol=1e-5)
        np.testing.assert_allclose(saved.outputs(ROWS)[name], expected[name], atol=1e-5)
    assert np.isfinite(expected[names[0]]).all()
    with serve.running(exports / "models") as server:
        connection = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=30)
        body = json.dumps({"instances": [{k: (None if isinstance(v, float) and v != v else v)
                                          for k, v in row.items()} for row in ROWS]})
        connection.request("POST", f"/v1/models/{recipe}:predict", body=body)
        rows = json.loads(connection.getresponse().read())["predictions"]
        columns = {c: [row[c] for row in ROWS] for c in FEATURES}
        connection.request("POST", f"/v1/models/{recipe}:predict",
                           body=json.dumps({"inputs": columns}, allow_nan=True))
        columnar = json.loads(connection.getresponse().read())["outputs"]
    if recipe == "relu-regression":
        np.testing.assert_allclose(rows, expected["predictions"], atol=1e-5)
        np.testing.assert_allclose(columnar, expected["predictions"], atol=1e-5)
    else:
        np.testing.assert_allclose([r["probabilities"] for r in rows], expected["probabilities"],
                                   atol=1e-5)
        np.testing.assert_allclose(columnar["probabilities"], expected["probabilities"], atol=1e-5)
        assert [r["labels"] for r in rows] == list(onnx.predict(ROWS))


def test_metadata_describes_each_column_and_the_inputs_are_named(exports):
    folder = exports / "models" / "binary-sigmoid" / "1"
    metadata = json.loads((folder / "metadata.json").read_text())
    features = {f["name"]: f for f in metadata["features"]}
    assert [f["input"] for f in metadata["features"]] == ["age", "sex", "class_", "fare_usd",
                                                          "cabin_deck"]
    assert features["age"]["kind"] == "numeric" and features["age"]["had_gaps"] is True
    assert features["fare usd"]["had_gaps"] is False and 20 < features["fare usd"]["mean"] < 100
    assert sorted(features["sex"]["vocabulary"]) == ["female", "male"]  # stripped: no " male "
    assert sorted(features["class"]["vocabulary"]) == ["1", "2", "3"]  # --categorical class
    assert "" in features["cabin.deck"]["vocabulary"]  # missing is its own category
    report = json.loads((exports / "binary-sigmoid.json").read_text())
    assert report["metrics"]["accuracy"] > 0.65  # sex and class carry the signal
    shown = subprocess.run(
        [str(Path(sys.executable).with_name("saved_model_cli")), "show", "--dir", str(folder),
         "--tag_set", "serve", "--signature_def", "serving_default"],
        capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0, shown.stderr
    inputs = shown.stdout.split("outputs")[0]
    for name, dtype in (("age", "DT_FLOAT"), ("sex", "DT_STRING"), ("class_", "DT_STRING"),
                        ("fare_usd", "DT_FLOAT"), ("cabin_deck", "DT_STRING")):
        assert re.search(rf"inputs\['{name}'\] tensor_info:\s+dtype: {dtype}\s+shape: \(-1\)\n",
                         inputs), inputs
    assert inputs.count("tensor_info") == 5


def test_bad_requests_name_the_row_and_the_column(exports):
    model = zoo.load(exports / "models" / "binary-sigmoid")
    cases = [
        ([{k: v for k, v in ROWS[0].items() if k != "sex"}], r"Row 0 lacks column\(s\) 'sex'"),
        ([{**ROWS[0], "sex": 3}], r"Row 0, column 'sex': 3 is a number, but 'sex' is categorical"),
        ([ROWS[0], {**ROWS[0], "age": "old"}], r"Row 1, column 'age': 'old' is text, but 'age' is "
                                               r"numeric"),
        ([{**ROWS[0], "deck": "A"}], r"Row 0 has unknown column\(s\) 'deck'"),
    ]
    for rows, message in cases:
        with pytest.raises(ValueError, match=message):
            model.predict(rows)
    with pytest.raises(ValueError, match="use `feed"):
        model.features(ROWS)
    with serve.running(exports / "models") as server:
        connection = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=30)
        connection.request("POST", "/v1/models/binary-sigmoid:predict",
                           body=json.dumps({"instances": [{"age": 3}]}))
        response = connection.getresponse()
        assert response.status == 400
        assert "Row 0 lacks column(s) 'sex'" in json.loads(response.read())["error"]


def test_lists_and_dataframes_give_the_same_answers(exports):
    pandas = pytest.importorskip("pandas")
    model = zoo.load(exports / "models" / "multiclass-softmax")
    lists = [[row[c] for c in FEATURES] for row in ROWS]
    frame = pandas.DataFrame(ROWS)
    frame["passenger"] = range(len(ROWS))  # an extra column is left alone
    want = model.predict_proba(ROWS)
    np.testing.assert_array_equal(model.predict_proba(lists), want)
    np.testing.assert_array_equal(model.predict_proba(frame), want)


def test_numpy_encoding_equals_the_exported_keras_encoder(tmp_path):
    dataset = tables.read_csv(passengers(tmp_path / "p.csv"), "survived", task="binary",
                              drop=["embarked", "price"], categorical=["class"])
    data = prepare(dataset, seed=3)
    assert data.encoding is not None and data.encoding.layout == "columns"
    import keras

    inputs = data.encoding.inputs()
    encoder = keras.Model(inputs, data.encoding.encoder(inputs))
    for x in (data.split.x_test, data.split.x_train):
        by_keras = np.asarray(encoder(data.export_feed(x)))
        np.testing.assert_allclose(by_keras, data.encoding.transform(x), atol=1e-6)
    assert data.n_features == data.encoding.width == 2 + 3 + 4 + 1 + 6  # age+gap, sex, class, fare, deck


def test_an_all_numeric_table_with_gaps_keeps_the_features_matrix(tmp_path, cli):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 3))
    y = np.where(x[:, 0] + x[:, 1] > 0, "up", "down")
    path = tmp_path / "gaps.csv"
    with open(path, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["a", "b", "c", "y"])
        for i, (row, label) in enumerate(zip(x, y)):
            out.writerow(["" if i % 5 == 0 else f"{row[0]:.4f}", f"{row[1]:.4f}", f"{row[2]:.4f}", label])
    root = tmp_path / "models"
    status, out, err = cli("binary-sigmoid", "--data", path, "--target", "y", "--epochs", "20",
                           "--output-dir", root)
    assert status == 0, err
    model = zoo.load("binary-sigmoid", model_dir=root)
    assert model.signature_inputs == {"features": ("float32", [-1, 3])}
    assert model.metadata["inputs"] == "matrix"
    assert [f["had_gaps"] for f in model.metadata["features"]] == [True, False, False]
    probabilities = model.predict_proba([[np.nan, 1.0, 0.0], [None, 1.0, 0.0], [2.0, 1.0, 0.0]])
    np.testing.assert_array_equal(probabilities[0], probabilities[1])  # NaN and None: missing
    assert not np.allclose(probabilities[0], probabilities[2])  # the gap indicator, not a value


def _read(path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


def _typed(cells):
    """A CSV row's feature cells as an app sends them: numbers for age and fare, None for gaps."""
    def number(text):
        return None if text.strip() in ("", "NA") else float(text)

    age, sex, cls, fare, deck = cells[:5]
    return {"age": number(age), "sex": sex, "class": cls, "fare usd": number(fare),
            "cabin.deck": deck}


def test_batch_prediction_writes_every_row_with_the_zoo_predictions(exports, tmp_path):
    source = exports / "passengers.csv"
    target = tmp_path / "out.csv"
    done = subprocess.run(
        [sys.executable, "-m", "models.predict", "multiclass-softmax", "--model-dir",
         str(exports / "models"), "--data", str(source), "--output", str(target)],
        cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    rows_in, rows_out = _read(source), _read(target)
    model = zoo.load(exports / "models" / "multiclass-softmax")
    assert rows_out[0] == [*HEADER, "label", *(f"probability_{c}" for c in model.class_names)]
    assert len(rows_out) == len(rows_in)
    assert [r[:len(HEADER)] for r in rows_out[1:]] == rows_in[1:]  # every cell as it was
    typed = [_typed(r) for r in rows_in[1:]]
    expected = model.predict_proba(typed)
    got = np.array([r[len(HEADER) + 1:] for r in rows_out[1:]], dtype=np.float32)
    np.testing.assert_allclose(got, expected, atol=1e-6)
    assert [r[len(HEADER)] for r in rows_out[1:]] == list(model.predict(typed))


def test_batch_prediction_refuses_a_file_without_a_feature_column(exports, tmp_path):
    source = tmp_path / "short.csv"
    source.write_text("age,sex\n30,male\n")
    target = tmp_path / "never.csv"
    done = subprocess.run(
        [sys.executable, "-m", "models.predict", "binary-sigmoid", "--model-dir",
         str(exports / "models"), "--data", str(source), "--output", str(target)],
        cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert "lacks the column(s) 'class', 'fare usd', 'cabin.deck'" in done.stderr
    assert "Traceback" not in done.stderr
    assert not target.exists() and list(tmp_path.iterdir()) == [source]


def test_batch_prediction_names_a_bad_cell_and_writes_nothing(exports, tmp_path):
    rows = _read(exports / "passengers.csv")
    rows[120][0] = "forty"
    source = tmp_path / "bad.csv"
    with open(source, "w", newline="") as f:
        csv.writer(f).writerows(rows)
    target = tmp_path / "out.csv"
    with open(target, "wb") as handle, pytest.raises(batch.PredictError,
                                                     match="Data row 120, column 'age' holds 'forty'"):
        batch.predict_file(zoo.load(exports / "models" / "binary-sigmoid"), source, handle,
                           block_bytes=1 << 12)
    assert batch.main(["binary-sigmoid", "--model-dir", str(exports / "models"), "--data",
                       str(source), "--output", str(tmp_path / "other.csv")]) == 1
    assert not (tmp_path / "other.csv").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.csv", "out.csv"]


def test_input_names_are_valid_distinct_and_not_keywords():
    names = encoding.input_names(["a b", "a.b", "a_b", "1st", "def", "features", "é"])
    assert names == ["a_b", "a_b_2", "a_b_3", "c1st", "def_", "features_2", "column"]


# The child's own peak: VmHWM (ru_maxrss would carry the parent's across exec).
_PEAK = ("import runpy, sys\nsys.argv = ['models.predict', *sys.argv[1:]]\n"
         "try:\n    runpy.run_module('models.predict', run_name='__main__')\n"
         "except SystemExit as exit:\n    code = exit.code\n"
         "peak = [line.split()[1] for line in open('/proc/self/status') if line.startswith('VmHWM')]\n"
         "print('PEAK_KB', peak[0], file=sys.stderr)\nsys.exit(code)")


def _passenger_rows(path, rows, seed):
    """`rows` passenger rows written by Arrow (fast), with gaps and an unseen deck."""
    import pyarrow as pa
    from pyarrow import csv as pacsv

    rng = np.random.default_rng(seed)
    age = np.char.mod("%.1f", rng.normal(35, 12, rows)).astype(object)
    age[rng.random(rows) < 0.1] = ""
    columns = {
        "age": age, "sex": np.array(["male", "female", "NA"], dtype=object)[rng.integers(0, 3, rows)],
        "class": rng.integers(1, 4, rows).astype(str).astype(object),
        "fare usd": np.char.mod("%.2f", rng.gamma(2, 20, rows)).astype(object),
        "cabin.deck": np.array(["A", "B", "C", "D", "", "Z"], dtype=object)[rng.integers(0, 6, rows)],
        "note": np.full(rows, "kept", dtype=object),
    }
    pacsv.write_csv(pa.table(columns), path, pacsv.WriteOptions(quoting_style="needed"))
    return path


def _predict_peak(model_dir, source, target):
    done = subprocess.run(
        [sys.executable, "-c", _PEAK, "binary-sigmoid", "--model-dir", str(model_dir), "--data",
         str(source), "--output", str(target)], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return int(done.stderr.split("PEAK_KB")[1].split()[0]) / 1024


def test_batch_prediction_of_a_million_rows_runs_in_bounded_memory(exports, tmp_path):
    small = _predict_peak(exports / "models", _passenger_rows(tmp_path / "small.csv", 100_000, 1),
                          tmp_path / "small_out.csv")
    source = _passenger_rows(tmp_path / "big.csv", 1_000_000, 2)
    target = tmp_path / "big_out.csv"
    big = _predict_peak(exports / "models", source, target)
    # Ten times the rows, a little more memory (255 -> 367 MB measured; 452 MB at 3,000,000
    # rows): the rows are not held, which would add several hundred MB per million rows.
    assert big < small * 1.6, (small, big)
    assert big < 800, big  # MB: the model, ONNX Runtime, Arrow and a few blocks, not the file
    import pyarrow as pa
    from pyarrow import csv as pacsv

    out = pacsv.read_csv(target, convert_options=pacsv.ConvertOptions(
        column_types={"class": pa.string(), "age": pa.string(), "fare usd": pa.string()},
        strings_can_be_null=False))
    assert out.num_rows == 1_000_000 and out.column("note").unique().to_pylist() == ["kept"]
    model = zoo.load(exports / "models" / "binary-sigmoid")
    sample = np.r_[0:500, 999_500:1_000_000]
    rows = [_typed([out.column(c)[int(i)].as_py() for c in FEATURES]) for i in sample]
    expected = model.predict_proba(rows)
    got = np.column_stack([out.column(f"probability_{c}").to_numpy()[sample]
                           for c in model.class_names])
    np.testing.assert_allclose(got, expected, atol=1e-6)
