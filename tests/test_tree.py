"""models.lessons.tree (entropy, information gain, the tree) and the decision-tree-entropy recipe."""

import io
import json
import math
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from scipy import stats
from sklearn.datasets import make_classification
from sklearn.tree import DecisionTreeClassifier

from models import data
from models.lessons.tree import DecisionTree, best_split, entropy, information_gain


def _generated(rows=2000, features=8, classes=3, seed=0):
    """Continuous float32 data: no tied values, so no tied splits."""
    x, y = make_classification(n_samples=rows, n_features=features, n_informative=5,
                               n_redundant=0, n_classes=classes, random_state=seed)
    return x.astype(np.float32), y


def _fit_test(name, seed=0):
    dataset = data.load(name)
    parts = data.split(dataset, seed)
    return (np.concatenate([parts.x_train, parts.x_val]),
            np.concatenate([parts.y_train, parts.y_val]), parts.x_test, parts.y_test)


def _sklearn_root(x, y):
    sk = DecisionTreeClassifier(criterion="entropy", max_depth=1, random_state=0).fit(x, y)
    t = sk.tree_
    lo, hi = t.children_left[0], t.children_right[0]
    n = t.n_node_samples
    gain = t.impurity[0] - (n[lo] * t.impurity[lo] + n[hi] * t.impurity[hi]) / n[0]
    return int(t.feature[0]), float(t.threshold[0]), float(gain)


# ---------------------------------------------------------------- entropy


@pytest.mark.parametrize("seed", range(10))
@pytest.mark.parametrize("base", [2, math.e, 10])
def test_entropy_matches_scipy_on_random_distributions(seed, base):
    rng = np.random.default_rng(seed)
    k = int(rng.integers(2, 12))
    counts = rng.integers(0, 50, size=k)
    counts[0] += 1  # at least one positive count
    p = rng.dirichlet(np.full(k, 0.5))
    expected_counts = stats.entropy(counts, base=base)
    assert entropy(counts, base, kind="counts") == pytest.approx(expected_counts, abs=1e-12)
    assert entropy(p, base) == pytest.approx(stats.entropy(p, base=base), abs=1e-12)
    labels = np.repeat(np.arange(k), counts)
    rng.shuffle(labels)
    assert entropy(labels, base, kind="labels") == pytest.approx(expected_counts, abs=1e-12)


def test_marbles_pure_and_half_half():
    marbles = [1, 3, 4]  # red, purple, yellow
    assert round(entropy(marbles, kind="counts"), 4) == 1.4056  # bits (ERRATA #1)
    assert round(entropy(marbles, base=math.e, kind="counts"), 4) == 0.9743  # the notes' 0.97
    assert entropy(["red"] * 8) == 0.0
    assert entropy([8, 0, 0], kind="counts") == 0.0
    assert entropy(["yellow"] * 4 + ["purple"] * 4) == 1.0  # ERRATA #2
    assert round(entropy([4, 4], base=math.e, kind="counts"), 4) == 0.6931
    assert entropy([1 / 8, 3 / 8, 4 / 8]) == entropy(marbles, kind="counts")


def test_entropy_auto_kind():
    assert entropy(list("aab")) == entropy([2, 1], kind="counts")  # strings: labels
    assert entropy([True, False]) == 1.0  # booleans: labels
    assert entropy(np.array([0.25, 0.75])) == entropy([1, 3], kind="counts")  # floats: p
    assert entropy([0, 1, 1, 0], kind="labels") == 1.0
    assert entropy([("a", 1), ("b", 2)]) == 1.0  # any hashable label


@pytest.mark.parametrize("values, kwargs, message", [
    ([], {}, r"`values` must not be empty\. Received: values=\[\]"),
    (np.array([]), {"kind": "counts"}, r"`values` must not be empty"),
    ([1, -3, 4], {"kind": "counts"}, r"`values` must be non-negative counts; index 1 is -3"),
    ([0, 0], {"kind": "counts"}, r"at least one positive count"),
    ([0.5, 0.6], {}, r"must be probabilities that sum to 1; they sum to 1\.1"),
    ([1.5, -0.5], {}, r"must be probabilities in \[0, 1\]"),
    ([1, 3, 4], {}, r"holds integers, which can be class labels or class counts\. Pass "
                    r"`kind='labels'`"),
    ("aab", {}, r"not a string\. Received: values='aab'"),
    (5, {}, r"must be a 1-D sequence"),
    (np.ones((2, 2)), {}, r"must be 1-D\. Received: values with shape \(2, 2\)"),
    (["a", "b"], {"kind": "counts"}, r"must hold numbers when kind='counts'"),
    ([1.0, float("nan")], {"kind": "counts"}, r"must hold finite numbers"),
    ([1, 2], {"kind": "bits"}, r"`kind` must be one of 'auto', 'labels', 'counts', "
                               r"'probabilities'\. Received: kind='bits'"),
    ([1, 2], {"kind": "counts", "base": 1}, r"`base` must be a number > 0 other than 1 .* "
                                            r"Received: base=1"),
    ([1, 2], {"kind": "counts", "base": -2}, r"Received: base=-2"),
    ([1, 2], {"kind": "counts", "base": "e"}, r"Received: base='e'"),
])
def test_entropy_validation(values, kwargs, message):
    with pytest.raises(ValueError, match=message):
        entropy(values, **kwargs)


# ---------------------------------------------------------------- information gain


def test_information_gain():
    parent = ["a"] * 4 + ["b"] * 4
    assert information_gain(parent, [["a"] * 4, ["b"] * 4]) == 1.0
    assert information_gain(parent, [parent, []]) == 0.0  # an empty group weighs nothing
    mixed = information_gain(parent, [["a", "a", "a", "b"], ["a", "b", "b", "b"]])
    expected = 1.0 - entropy([3, 1], kind="counts")
    assert mixed == pytest.approx(expected, abs=1e-12)
    assert information_gain([4, 4], [[3, 1], [1, 3]], kind="counts") == pytest.approx(expected)
    assert information_gain([4, 4], np.array([[3, 1], [1, 3]]), kind="counts") == \
        pytest.approx(expected)
    nats = information_gain(parent, [["a"] * 4, ["b"] * 4], base=math.e)
    assert nats == pytest.approx(math.log(2))


@pytest.mark.parametrize("parent, children, kwargs, message", [
    ([], [[], []], {}, r"`parent` must not be empty"),
    (["a", "b"], [["a", "b"]], {}, r"`children` must be a list of two or more groups .*"
                                   r"Received: 1 group"),
    (["a", "b"], [["a"], ["a"]], {}, r"`children` must partition `parent`"),
    (["a", "b"], [["a"], ["b", "b"]], {}, r"`children` must partition `parent`"),
    ([4, 4], [[3, 1], [1, 2]], {"kind": "counts"}, r"`children` must partition `parent`"),
    ([4, -4], [[3, 1], [1, 3]], {"kind": "counts"}, r"`parent` must be non-negative counts"),
    ([4, 4], [[5, -1], [-1, 5]], {"kind": "counts"}, r"`children\[0\]` must be 2 non-negative"),
    (["a"], [["a"], []], {"kind": "probabilities"}, r"`kind` must be one of 'labels', 'counts'"),
    (["a", "b"], [["a"], "b"], {}, r"`children\[1\]` must be a sequence of labels, not a string"),
])
def test_information_gain_validation(parent, children, kwargs, message):
    with pytest.raises(ValueError, match=message):
        information_gain(parent, children, **kwargs)


# ---------------------------------------------------------------- best split


def test_best_split_agrees_with_information_gain():
    x, y = _generated(rows=500)
    split = best_split(x, y)
    column = x[:, split.feature]
    groups = [y[column <= split.threshold], y[column > split.threshold]]
    assert split.information_gain == pytest.approx(information_gain(y, groups), abs=1e-12)
    nats = best_split(x, y, base=math.e)
    assert nats.information_gain == pytest.approx(split.information_gain * math.log(2))


def _unique_best(x, y):
    """Whether the best feature's gain beats every other feature's best (no ties)."""
    gains = sorted((best_split(x[:, [f]], y).information_gain for f in range(x.shape[1])),
                   reverse=True)
    return gains[0] - gains[1] > 1e-9


@pytest.mark.parametrize("name", ["generated", "breast_cancer", "wine"])
def test_root_split_equals_sklearn(name):
    if name == "generated":
        x, y = _generated()
    else:
        x, y, _, _ = _fit_test(name)
    assert _unique_best(x, y), "the data set must have one best split for this test"
    split = best_split(x, y)
    feature, threshold, gain = _sklearn_root(x, y)
    assert split.feature == feature
    assert split.threshold == threshold  # exactly: same midpoints of the same float32 values
    assert split.information_gain == pytest.approx(gain, abs=1e-9)
    root = DecisionTree(max_depth=3).fit(x, y).to_dict()["nodes"][0]
    assert (root["feature"], root["threshold"]) == (feature, threshold)


def test_best_split_edge_cases():
    assert best_split([[1.0, 2.0], [1.0, 2.0]], ["a", "b"]) is None  # constant features
    split = best_split([[1.0], [2.0], [3.0]], ["a", "a", "a"])  # pure: a split gains nothing
    assert split.information_gain == 0.0
    tied = best_split([[0.0, 0.0], [1.0, 1.0]], ["a", "b"])  # two equal features: the first
    assert (tied.feature, tied.threshold) == (0, 0.5)


# ---------------------------------------------------------------- the tree


@pytest.mark.parametrize("name, depth", [("breast_cancer", 4), ("digits", 8), ("generated", 6)])
def test_held_out_accuracy_close_to_sklearn(name, depth):
    if name == "generated":
        x, y = _generated(rows=3000, seed=1)
        x_fit, y_fit, x_test, y_test = x[:2400], y[:2400], x[2400:], y[2400:]
    else:
        x_fit, y_fit, x_test, y_test = _fit_test(name)
    ours = DecisionTree(max_depth=depth).fit(x_fit, y_fit)
    theirs = DecisionTreeClassifier(criterion="entropy", max_depth=depth, random_state=0)
    theirs.fit(x_fit, y_fit)
    ours_accuracy = np.mean(ours.predict(x_test) == y_test)
    sk_accuracy = np.mean(theirs.predict(x_test) == y_test)
    assert abs(ours_accuracy - sk_accuracy) <= 0.05, (ours_accuracy, sk_accuracy)
    assert ours.depth == theirs.get_depth()


def test_same_tree_as_sklearn_without_ties():
    x, y = _generated(rows=3000)
    ours = DecisionTree(max_depth=4).fit(x, y)
    theirs = DecisionTreeClassifier(criterion="entropy", max_depth=4, random_state=0).fit(x, y)
    assert ours.n_nodes == theirs.tree_.node_count
    assert ours.n_leaves == theirs.get_n_leaves()
    np.testing.assert_array_equal(ours.predict(x), theirs.predict(x))
    np.testing.assert_allclose(ours.predict_proba(x), theirs.predict_proba(x))


def test_fast_enough():
    x, y = _generated(rows=10_000, features=20)
    started = time.perf_counter()
    tree = DecisionTree(max_depth=8).fit(x, y)
    seconds = time.perf_counter() - started
    assert tree.depth == 8
    assert seconds < 2.0, f"depth 8 on 10,000 x 20 took {seconds:.2f} s"


def test_tree_stops_as_asked():
    x, y = _generated(rows=400, classes=2)
    assert DecisionTree(max_depth=1).fit(x, y).depth == 1
    full = DecisionTree().fit(x, y)
    assert np.all(full.predict(x) == y)  # grown until pure: fits the training rows
    big = DecisionTree(min_samples_split=100).fit(x, y)
    counts = np.asarray([n["counts"] for n in big.to_dict()["nodes"] if n["feature"] is not None])
    assert counts.sum(axis=1).min() >= 100
    one_leaf = DecisionTree().fit(x, np.zeros(len(x), dtype=int))
    assert (one_leaf.depth, one_leaf.n_leaves) == (0, 1)
    constant = DecisionTree().fit(np.ones((4, 2)), ["a", "b", "a", "b"])
    assert constant.n_nodes == 1 and constant.predict_proba([[1, 1]]).tolist() == [[0.5, 0.5]]


class _Frame:
    """What `fit` reads of a pandas DataFrame: `columns` and the values (pandas is not a
    dependency of the package)."""

    columns = ["petal", "sepal"]

    def __array__(self, dtype=None, copy=None):
        return np.array([[1.0, 0.0], [2.0, 0.0], [3.0, 1.0], [4.0, 1.0]], dtype=dtype)


def test_dataframe_column_names_become_feature_names():
    frame = _Frame()
    tree = DecisionTree().fit(frame, ["a", "a", "b", "b"])
    assert tree.feature_names_ == ["petal", "sepal"]
    assert "petal <= 2.5?" in tree.to_text()


def test_predict_proba_and_string_labels():
    x, y = _generated(rows=300, classes=3)
    names = np.array(["setosa", "versicolor", "virginica"])
    tree = DecisionTree(max_depth=3).fit(x, names[y], feature_names=[f"f{i}" for i in range(8)])
    proba = tree.predict_proba(x)
    assert proba.shape == (300, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert tree.classes_.tolist() == names.tolist()
    assert tree.predict(x).tolist() == names[proba.argmax(axis=1)].tolist()
    text = tree.to_text()
    assert text.splitlines()[1].startswith("f") and "|-- yes: " in text and "-> " in text
    assert len(tree.to_text(max_depth=1).splitlines()) < len(text.splitlines())
    assert str(tree) == text


def test_json_round_trip_predicts_identically(tmp_path):
    x_fit, y_fit, x_test, _ = _fit_test("breast_cancer")
    tree = DecisionTree(max_depth=6).fit(x_fit, y_fit)
    path = tmp_path / "tree.json"
    path.write_text(json.dumps(tree.to_dict()))
    loaded = DecisionTree.from_dict(json.loads(path.read_text()))
    rows = np.concatenate([x_fit, x_test])
    np.testing.assert_array_equal(loaded.predict(rows), tree.predict(rows))
    np.testing.assert_array_equal(loaded.predict_proba(rows), tree.predict_proba(rows))
    assert loaded.to_dict() == tree.to_dict()
    assert DecisionTree.from_json(tree.to_json()).to_text() == tree.to_text()
    assert repr(loaded) == "DecisionTree(max_depth=6, min_samples_split=2)"


@pytest.mark.parametrize("kwargs, message", [
    ({"max_depth": 0}, r"`max_depth` must be an integer >= 1 or None .* Received: max_depth=0"),
    ({"max_depth": 2.5}, r"Received: max_depth=2\.5"),
    ({"max_depth": True}, r"Received: max_depth=True"),
    ({"min_samples_split": 1}, r"`min_samples_split` must be an integer >= 2 .* "
                               r"Received: min_samples_split=1"),
])
def test_tree_argument_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DecisionTree(**kwargs)


def test_stray_keyword_refused_by_name():
    with pytest.raises(TypeError, match="max_dept"):
        DecisionTree(max_dept=3)


@pytest.mark.parametrize("x, y, message", [
    (np.empty((0, 3)), [], r"`X` must not be empty.* Received: X with shape \(0, 3\)"),
    ([1.0, 2.0], ["a", "b"], r"`X` must be 2-D, \[rows, features\]\. Reshape a single row"),
    ([[1.0], [float("nan")]], ["a", "b"], r"`X` must hold finite numbers; row 1, column 0"),
    ([["a"], ["b"]], ["a", "b"], r"`X` must be numbers"),
    ([[1.0], [2.0]], ["a"], r"`y` must hold one label per row of `X`\. Received: len\(y\)=1"),
    ([[1.0], [2.0]], [], r"`y` must not be empty"),
])
def test_fit_validation(x, y, message):
    with pytest.raises(ValueError, match=message):
        DecisionTree().fit(x, y)


def test_predict_validation():
    with pytest.raises(ValueError, match=r"not fitted yet\. Call `fit\(X, y\)` first"):
        DecisionTree().predict([[1.0]])
    tree = DecisionTree().fit([[1.0, 2.0], [3.0, 4.0]], [0, 1])
    with pytest.raises(ValueError, match=r"`X` must have 2 columns.* shape \(1, 3\)"):
        tree.predict([[1.0, 2.0, 3.0]])
    with pytest.raises(ValueError, match=r"`feature_names` must name each of the 2 columns"):
        DecisionTree().fit([[1.0, 2.0]], [0], feature_names=["only one"])


def test_from_dict_validation():
    spec = DecisionTree().fit([[1.0], [2.0]], ["a", "b"]).to_dict()
    with pytest.raises(ValueError, match=r"written by `DecisionTree\.to_dict`"):
        DecisionTree.from_dict({"nodes": []})
    with pytest.raises(ValueError, match=r"format_version 99"):
        DecisionTree.from_dict({**spec, "format_version": 99})
    cyclic = json.loads(json.dumps(spec))
    cyclic["nodes"][0]["left"] = 0
    with pytest.raises(ValueError, match=r"node 0 is not a valid split"):
        DecisionTree.from_dict(cyclic)
    broken = json.loads(json.dumps(spec))
    del broken["nodes"][1]["counts"]
    with pytest.raises(ValueError, match=r"node 1 must have `feature`, .* and `counts`"):
        DecisionTree.from_dict(broken)
    broken["nodes"][1]["counts"] = [0, 0]
    with pytest.raises(ValueError, match=r"node 1 must have 2 non-negative counts, not all 0"):
        DecisionTree.from_dict(broken)
    with pytest.raises(ValueError, match=r"`spec` is missing 'params'"):
        DecisionTree.from_dict({k: v for k, v in spec.items() if k != "params"})
    with pytest.raises(ValueError, match=r"at least one node and one class"):
        DecisionTree.from_dict({**spec, "nodes": []})


# ---------------------------------------------------------------- the recipe

ROOT = Path(__file__).resolve().parents[1]


def _cli(*args):
    """`python -m recipes.run ARGS...` in a fresh process, from the repository root."""
    done = subprocess.run([sys.executable, "-m", "recipes.run", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    return done.returncode, done.stdout, done.stderr


def test_recipe_runs_from_the_cli_and_export_loads_back(tmp_path):
    output_dir, report_path = tmp_path / "saved_models", tmp_path / "report.json"
    status, out, err = _cli("decision-tree-entropy", "--output-dir", output_dir,
                            "--report", report_path)
    assert status == 0, err
    report = json.loads(report_path.read_text())
    details = report["details"]
    assert set(details) == {"marbles", "pure", "half_half_bits", "best_split", "tree"}
    assert set(details["marbles"]) == {"entropy_bits", "entropy_nats"}
    assert set(details["best_split"]) == {"feature", "threshold", "information_gain"}
    assert set(details["tree"]) == {"test_accuracy", "sklearn_test_accuracy", "depth"}
    assert round(details["marbles"]["entropy_bits"], 4) == 1.4056
    assert round(details["marbles"]["entropy_nats"], 4) == 0.9743
    assert details["pure"] == 0.0 and details["half_half_bits"] == 1.0
    assert details["best_split"]["feature"] == "worst radius"
    assert details["best_split"]["information_gain"] > 0.5
    assert details["tree"]["depth"] == 4
    assert abs(details["tree"]["test_accuracy"] - details["tree"]["sklearn_test_accuracy"]) <= 0.05
    assert report["metrics"]["accuracy"] == details["tree"]["test_accuracy"]
    assert "worst radius <= 16.795?" in out and "1.4056" in out and "0.9743" in out

    folder = output_dir / "decision-tree-entropy" / "1"
    assert report["export"] == str(folder)
    metadata = json.loads((folder / "metadata.json").read_text())
    assert metadata["version"] == 1 and metadata["model_file"] == "tree.json"
    tree = DecisionTree.from_dict(json.loads((folder / "tree.json").read_text()))
    assert tree.classes_.tolist() == metadata["class_names"]
    assert tree.feature_names_ == metadata["feature_names"]
    names = np.asarray(data.load("breast_cancer").class_names)
    _, _, x_test, y_test = _fit_test("breast_cancer", seed=42)
    assert np.mean(tree.predict(x_test) == names[y_test]) == details["tree"]["test_accuracy"]

    # In-process, as an app would: the next run is version 2; --no-export writes nothing.
    from recipes.run import run_recipe

    result = run_recipe("decision-tree-entropy", ["--output-dir", str(output_dir)],
                        out=io.StringIO())
    assert result.export == str(output_dir / "decision-tree-entropy" / "2")
    result = run_recipe("decision-tree-entropy",
                        ["--no-export", "--output-dir", str(tmp_path / "none")], out=io.StringIO())
    assert result.export is None and not (tmp_path / "none" / "decision-tree-entropy").exists()


def test_recipe_options(capsys):
    from recipes.core import registry
    from recipes.run import main

    recipe = registry.get("decision-tree-entropy")
    assert set(recipe.options) == {"no_export", "seed", "output_dir", "report"}
    assert main(["decision-tree-entropy", "--epochs", "3"]) == 2
    assert "--epochs" in capsys.readouterr().err


def test_the_exported_tree_is_a_model_like_the_others_loaded_and_served(tmp_path):
    """The recipe's export: the zoo predicts as the tree on every test row, with either runtime,
    and the REST and gRPC servers answer for it (models.export.tree)."""
    import http.client

    from models import serve, zoo
    from recipes.run import run_recipe

    result = run_recipe("decision-tree-entropy", ["--output-dir", str(tmp_path)], out=io.StringIO())
    folder = Path(result.export)
    assert {"saved_model.pb", "model.onnx", "tree.json", "tree.txt", "metadata.json"} <= {
        p.name for p in folder.iterdir()}
    tree = DecisionTree.from_dict(json.loads((folder / "tree.json").read_text()))
    _, _, x_test, _ = _fit_test("breast_cancer", seed=42)
    labels, probabilities = tree.predict(x_test), tree.predict_proba(x_test)
    assert len(set(labels)) == 2
    for backend in ("onnx", "savedmodel"):
        model = zoo.load("decision-tree-entropy", model_dir=tmp_path, backend=backend)
        assert model.predict(x_test).tolist() == labels.tolist(), backend
        np.testing.assert_allclose(model.predict_proba(x_test), probabilities, rtol=0, atol=1e-7)

    with serve.running(tmp_path, grpc_port=0) as server:
        connection = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=20)
        connection.request("GET", "/v1/models/decision-tree-entropy")
        status = json.loads(connection.getresponse().read())
        assert status["model_version_status"][0]["state"] == "AVAILABLE"
        connection.request("POST", "/v1/models/decision-tree-entropy:predict",
                           body=json.dumps({"instances": x_test.tolist()}))
        answer = json.loads(connection.getresponse().read())
        assert [p["labels"] for p in answer["predictions"]] == labels.tolist()

        import grpc
        import tensorflow as tf
        from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

        request = predict_pb2.PredictRequest()
        request.model_spec.name = "decision-tree-entropy"
        request.inputs["features"].CopyFrom(tf.make_tensor_proto(x_test.astype(np.float32)))
        with grpc.insecure_channel(f"127.0.0.1:{server.grpc.port}") as channel:
            response = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, timeout=20)
        assert [b.decode() for b in tf.make_ndarray(response.outputs["labels"])] == labels.tolist()
