"""`--data FILE.csv --target COLUMN` (and `--drop`): the user's own table, end to end.

Every test writes its own CSV. The runs are real (TensorFlow, export, the
SavedModel's `serving_default` signature); the bad files stop before training
and must leave nothing under the export root.
"""

import hashlib
import json

import numpy as np
import pytest

from models.data import tables
from models.data import DataError
from recipes.core import options, registry
from recipes.core.errors import UsageError


def write_csv(path, header, rows):
    """Writes `header` and `rows` (lists of cells) as comma-separated lines."""
    lines = [",".join(header)] + [",".join(str(c) for c in row) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def two_blobs(n=400, seed=0):
    """Rows `x1, x2, label` with string labels: `cat` where x1 + x2 > 0, else `dog`."""
    x = np.random.default_rng(seed).normal(size=(n, 2))
    labels = np.where(x.sum(axis=1) > 0, "cat", "dog")
    return [[f"{a:.5f}", f"{b:.5f}", lab] for (a, b), lab in zip(x, labels)]


def exported_versions(output_dir):
    return [p for p in output_dir.glob("*/*") if p.name.isdigit()] if output_dir.exists() else []


def serve(export_path, rows):
    """Calls the exported SavedModel's `serving_default` on raw feature rows."""
    import tensorflow as tf

    loaded = tf.saved_model.load(str(export_path))
    return loaded.signatures["serving_default"](features=tf.constant(rows, tf.float32))


# ---------------------------------------------------------------- runs that train


def test_string_labels_round_trip_to_exported_labels(tmp_path, run_recipe, output_dir):
    rows = two_blobs()
    csv = write_csv(tmp_path / "pets.csv", ["x1", "x2", "label"], rows)
    status, report, out, err = run_recipe(
        "binary-sigmoid", "--data", csv, "--target", "label", "--epochs", "10"
    )
    assert status == 0, err
    assert report["metrics"]["accuracy"] > 0.9
    meta = json.loads((output_dir / "binary-sigmoid" / "1" / "metadata.json").read_text())
    assert meta["class_names"] == ["cat", "dog"]
    assert meta["feature_names"] == ["x1", "x2"]
    assert meta["target"] == "label"
    assert meta["dataset"]["name"] == "pets.csv"
    assert meta["dataset"]["rows"] == 400
    assert meta["dataset"]["sha256"] == hashlib.sha256(csv.read_bytes()).hexdigest()

    outputs = serve(report["export"], [[float(a), float(b)] for a, b, _ in rows])
    labels = [s.decode() for s in outputs["labels"].numpy()]
    truth = [lab for *_, lab in rows]
    assert set(labels) <= {"cat", "dog"}
    assert np.mean(np.array(labels) == np.array(truth)) > 0.9
    ids = outputs["class_ids"].numpy()
    assert [meta["class_names"][i] for i in ids] == labels


def test_target_in_the_middle_with_drop(tmp_path, run_recipe, output_dir):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(600, 3))
    names = np.array(["c", "a", "b"])[x.argmax(axis=1)]  # sorted class names: a, b, c
    rows = [[f"{r[0]:.5f}", name, f"row-{i}", f"{r[1]:.5f}", f"{r[2]:.5f}"]
            for i, (r, name) in enumerate(zip(x, names))]
    csv = write_csv(tmp_path / "three.csv", ["x1", "kind", "note", "x2", "x3"], rows)
    status, report, out, err = run_recipe(
        "multiclass-softmax", "--data", csv, "--target", "kind", "--drop", "note",
        "--epochs", "30", "--hidden", "16,8",
    )
    assert status == 0, err
    meta = json.loads((output_dir / "multiclass-softmax" / "1" / "metadata.json").read_text())
    assert meta["feature_names"] == ["x1", "x2", "x3"]  # file order, target and `note` left out
    assert meta["class_names"] == ["a", "b", "c"]
    assert report["metrics"]["accuracy"] > 0.8
    outputs = serve(report["export"], x[:50].astype(np.float32))
    labels = np.array([s.decode() for s in outputs["labels"].numpy()])
    assert np.mean(labels == names[:50]) > 0.8
    assert np.allclose(outputs["probabilities"].numpy().sum(axis=1), 1.0, atol=1e-5)


def test_network_beats_a_linear_fit_on_a_nonlinear_csv(tmp_path, run_recipe):
    rng = np.random.default_rng(2)
    x1, x2, x3 = rng.uniform(-3, 3, 3000), rng.uniform(-2, 2, 3000), rng.normal(size=3000)
    y = 3 * np.sin(x1) + x2**2 + rng.normal(scale=0.1, size=3000)
    rows = [[f"{a:.5f}", f"{b:.5f}", f"{c:.5f}", f"{t:.5f}"] for a, b, c, t in zip(x1, x2, x3, y)]
    csv = write_csv(tmp_path / "curve.csv", ["x1", "x2", "noise", "y"], rows)
    status, report, out, err = run_recipe(
        "leaky-relu-regression", "--data", csv, "--target", "y", "--epochs", "30",
        "--no-export",
    )
    assert status == 0, err
    linear = report["details"]["baselines"]["linear_regression"]
    assert report["metrics"]["r2"] > 0.9
    assert report["metrics"]["r2"] > linear["r2"] + 0.3
    assert report["metrics"]["rmse"] < 0.5 * linear["rmse"]


# ---------------------------------------------------------------- bad files: exit 1 or 2


def _bad_files():
    good = [["1.0", "2.0", "yes"], ["2.0", "1.0", "no"]] * 10
    header = ["x1", "x2", "label"]

    def text(*lines):
        return "\n".join(lines) + "\n"

    body = text(",".join(header), *(",".join(r) for r in good))
    cases = {
        # id: (file bytes or None for no file, extra args, exit status, words in the message)
        "missing-file": (None, [], 2, ["does not exist", "--data"]),
        "empty-file": (b"", [], 1, ["is empty"]),
        "header-only": (b"x1,x2,label\n", [], 1, ["no data rows"]),
        "unknown-target": (body.encode(), ["--target", "lable"], 2,
                           ["no column 'lable'", "Did you mean 'label'?", "x1, x2, label"]),
        "unknown-drop": (body.encode(), ["--drop", "x9"], 2, ["'x9'", "x1, x2, label"]),
        "empty-column": (
            text("x1,notes,label", *(f"{r[0]},  ,{r[2]}" if i % 2 else f"{r[0]},NA,{r[2]}"
                                     for i, r in enumerate(good))).encode(),
            [], 1, ["'notes'", "empty", "every row", "--drop notes"]),
        "empty-target": (
            text(",".join(header), *(f"{r[0]},{r[1]}," for r in good)).encode(),
            [], 1, ["target column 'label'", "every row"]),
        "too-many-categories": (
            text("x1,id,label", *(f"{i % 7}.0,user{i},{'yes' if i % 2 else 'no'}"
                                  for i in range(10_500))).encode(),
            [], 1, ["'id'", "10,500 distinct", "1,000", "--drop id"]),
        "numbers-read-as-text": (
            text("x1,age,label", *(f"{i % 7}.0,{'forty' if i == 1234 else i},"
                                   f"{'yes' if i % 2 else 'no'}" for i in range(3000))).encode(),
            [], 1, ["'age'", "data row 1235", "'forty'", "probably numeric"]),
        "unknown-categorical": (body.encode(), ["--categorical", "x9"], 2,
                                ["`--categorical`", "'x9'", "x1, x2, label"]),
        "infinite-value": (
            text(",".join(header), *(",".join(r) for r in good[:6]), "inf,1.0,yes",
                 *(",".join(r) for r in good[7:])).encode(),
            [], 1, ["'x1'", "infinite", "data row 7"]),
        "beyond-float32": (
            text(",".join(header), "1e39,1.0,yes", *(",".join(r) for r in good[1:])).encode(),
            [], 1, ["'x1'", "infinite", "data row 1", "3.4e38"]),
        "single-class": (
            text(",".join(header), *(f"{i}.0,1.0,yes" for i in range(20))).encode(),
            [], 1, ["single class", "'yes'"]),
        "too-few-rows": (
            text(",".join(header), *(",".join(r) for r in good[:6])).encode(),
            [], 1, ["6 rows", "too few"]),
        "class-too-small": (
            text(",".join(header), *(f"{i}.0,1.0,yes" for i in range(20)), "5.0,1.0,no",
                 "6.0,2.0,no").encode(),
            [], 1, ["Class 'no'", "2 row(s)"]),
        "not-utf8": (body.encode().replace(b"yes", b"s\xed", 1), [], 1,
                     ["not UTF-8", "0xed", "line 2"]),
        "duplicate-columns": (
            text("x1,x1,label", *(",".join(r) for r in good)).encode(),
            [], 1, ["twice", "'x1'"]),
        "ragged-row": (
            text(",".join(header), "1.0,yes", *(",".join(r) for r in good)).encode(),
            [], 1, ["could not be read as CSV", "Expected 3 columns"]),
        "unnamed-column": (
            text(",x1,label", *(",".join(r) for r in good)).encode(),
            [], 1, ["Column 1", "no name"]),
    }
    return cases


BAD_FILES = _bad_files()


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_file_gives_its_message_and_no_export(case, tmp_path, cli, output_dir):
    content, extra, status, words = BAD_FILES[case]
    csv = tmp_path / "table.csv"
    if content is not None:
        csv.write_bytes(content)
    args = ["--data", csv, "--target", "label", *extra]
    if "--target" in extra:
        args = ["--data", csv, *extra]
    got, out, err = cli("binary-sigmoid", *args, "--epochs", "1", "--output-dir", output_dir)
    assert got == status, err
    message = err.removeprefix("error: ")
    for word in words:
        assert word in message, f"{word!r} not in: {message}"
    assert "Traceback" not in err
    assert "\n" not in message.strip()  # one paragraph
    assert exported_versions(output_dir) == []


@pytest.mark.parametrize(
    "recipe, header, rows, suggestion",
    [
        ("binary-sigmoid", ["x", "y"], [[i, "abc"[i % 3]] for i in range(30)],
         "multiclass-softmax"),
        ("multiclass-softmax", ["x", "y"], [[i, "ab"[i % 2]] for i in range(30)],
         "binary-sigmoid"),
        ("relu-regression", ["x", "y"], [[i, i - 10] for i in range(30)],
         "leaky-relu-regression"),
        ("leaky-relu-regression", ["x", "y"], [[i, "ab"[i % 2]] for i in range(30)],
         "binary-sigmoid"),
        ("leaky-relu-regression", ["x", "y"], [[i, "abc"[i % 3]] for i in range(30)],
         "multiclass-softmax"),
    ],
    ids=["3-classes-binary", "2-classes-multiclass", "negative-relu", "strings-regression-2",
         "strings-regression-3"],
)
def test_data_that_fit_another_recipe_name_it(recipe, header, rows, suggestion, tmp_path, cli,
                                             output_dir):
    csv = write_csv(tmp_path / "t.csv", header, rows)
    status, out, err = cli(recipe, "--data", csv, "--target", "y", "--epochs", "1",
                           "--output-dir", output_dir)
    assert status == 1, err
    assert f"python -m recipes.run {suggestion} --data {csv} --target y" in err
    assert exported_versions(output_dir) == []


@pytest.mark.parametrize(
    "args, words",
    [
        (["--data", "x.csv"], "needs `--target COLUMN`"),
        (["--target", "y"], "needs `--data FILE.csv`"),
        (["--drop", "z"], "`--drop` leaves columns"),
        (["--data", "x.csv", "--target", "y", "--drop", "y"], "names the target column"),
    ],
    ids=["data-without-target", "target-without-data", "drop-without-data", "drop-the-target"],
)
def test_csv_options_go_together(args, words, cli):
    status, out, err = cli("binary-sigmoid", *args)
    assert status == 2
    assert words in err


def test_drop_repeats_into_a_tuple():
    recipe = registry.get("binary-sigmoid")
    config = options.parse(recipe, ["--data", "f.csv", "--target", "y", "--drop", "a",
                                    "--drop", "b c"])
    assert config.drop == ("a", "b c")
    assert options.parse(recipe, []).drop == ()
    with pytest.raises(UsageError, match="needs `--data FILE.csv`"):
        options.parse(recipe, ["--drop", "a"])


# ---------------------------------------------------------------- the reader alone


def test_reader_classes_sorted_numerically_and_file_hash(tmp_path):
    rows = [[i, [10, 2, 1][i % 3]] for i in range(30)]
    csv = write_csv(tmp_path / "n.csv", ["x", "grade"], rows)
    dataset = tables.read_csv(csv, "grade", task="multiclass")
    assert dataset.class_names == ["1", "2", "10"]
    assert list(dataset.y[:3]) == [2, 1, 0]  # 10 -> index 2, 2 -> 1, 1 -> 0
    assert dataset.y.dtype == np.int64
    assert dataset.name == "n.csv"
    assert dataset.sha256 == hashlib.sha256(csv.read_bytes()).hexdigest()


def test_reader_regression_with_few_integers_stays_a_regression(tmp_path):
    csv = write_csv(tmp_path / "r.csv", ["a", "score", "b"], [[i, i % 4, -i] for i in range(40)])
    dataset = tables.read_csv(csv, "score", task="positive")
    assert dataset.task == "regression"
    assert dataset.class_names is None
    assert dataset.y.dtype == np.float32
    assert dataset.feature_names == ["a", "b"]
    np.testing.assert_array_equal(dataset.x[:3], [[0, 0], [1, -1], [2, -2]])


def test_reader_utf8_names_and_byte_order_mark(tmp_path):
    rows = [[i, ["café", "naïve", "日本"][i % 3]] for i in range(30)]
    csv = tmp_path / "u.csv"
    write_csv(csv, ["x", "word"], rows)
    csv.write_bytes(b"\xef\xbb\xbf" + csv.read_bytes())
    dataset = tables.read_csv(csv, "word", task="multiclass")
    assert dataset.class_names == ["café", "naïve", "日本"]
    assert dataset.feature_names == ["x"]


def test_reader_finds_the_bad_byte_across_chunks(tmp_path, monkeypatch):
    monkeypatch.setattr(tables, "_CHUNK", 5)  # multi-byte characters straddle chunk edges
    lines = ["x,word"] + [f"{i},{'日本' if i % 2 else 'é'}" for i in range(12)]
    data = ("\n".join(lines) + "\n").encode()
    cut = data.index(b"\n5,") + 3  # line 7 holds data row 6, `5,日本`
    csv = tmp_path / "b.csv"
    csv.write_bytes(data[:cut] + b"\xff" + data[cut:])
    with pytest.raises(DataError, match="byte 0xff on line 7"):
        tables.read_csv(csv, "word", task="multiclass")
    csv.write_bytes(data)
    assert tables.read_csv(csv, "word", task="binary").class_names == ["é", "日本"]


def test_reader_checks_its_arguments(tmp_path):
    with pytest.raises(ValueError, match="`task` must be one of binary, multiclass"):
        tables.read_csv(tmp_path / "x.csv", "y", task="ranking")
    with pytest.raises(ValueError, match="`drop` must be a list of column names"):
        tables.read_csv(tmp_path / "x.csv", "y", task="binary", drop="a")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        tables.read_csv(tmp_path / "x.csv", "y", task="binary")


def test_reader_names_a_semicolon_file(tmp_path):
    csv = tmp_path / "semi.csv"
    csv.write_text("a;b;y\n1;2;3\n", encoding="utf-8")
    with pytest.raises(tables.UnknownColumn, match="other than commas"):
        tables.read_csv(csv, "y", task="regression")


def test_reader_needs_a_feature_column(tmp_path):
    csv = write_csv(tmp_path / "only.csv", ["x", "y"], [[i, i % 2] for i in range(20)])
    with pytest.raises(DataError, match="no feature column besides the target 'y'"):
        tables.read_csv(csv, "y", task="binary", drop=["x"])


def test_reader_same_table_in_small_blocks(tmp_path, monkeypatch):
    rng = np.random.default_rng(3)
    rows = [[f"{a:.4f}", ["lo", "mid", "hi"][i % 3], f"{b:.4f}"]
            for i, (a, b) in enumerate(rng.normal(size=(500, 2)))]
    csv = write_csv(tmp_path / "blocks.csv", ["a", "band", "b"], rows)
    whole = tables.read_csv(csv, "band", task="multiclass")
    monkeypatch.setattr(tables, "_BLOCK", 1 << 10)  # about 50 rows per block
    blocks = tables.read_csv(csv, "band", task="multiclass")
    np.testing.assert_array_equal(blocks.x, whole.x)
    np.testing.assert_array_equal(blocks.y, whole.y)
    assert blocks.class_names == whole.class_names == ["hi", "lo", "mid"]
    rows[431][2] = ""  # an empty cell far from the first block: read whole, kept as NaN
    write_csv(csv, ["a", "band", "b"], rows)
    gaps = tables.read_csv(csv, "band", task="multiclass")
    assert np.isnan(gaps.x[431, 1]) and np.isnan(gaps.x).sum() == 1
    np.testing.assert_array_equal(np.delete(gaps.x, 431, 0), np.delete(whole.x, 431, 0))
    assert "1 missing cell(s)" in gaps.description
