"""The export of a `models.lessons.tree.DecisionTree`: a model like the others, servable.

`export(tree, ...)` writes the next version folder of `ROOT/NAME/`
(`models.export.layout`) with

- `tree.json` (`DecisionTree.to_dict`) and whatever else the caller adds;
- a SavedModel whose `serving_default` signature is the export contract of
  `models.export.savedmodel`: input `features` float32 `[None, n_features]`,
  outputs `probabilities` float32 `[None, n_classes]`, `class_ids` int64 and
  `labels` string; the tree is TensorFlow ops (one gather per level: each row
  steps from its node to the child its feature value picks, until a leaf);
- `model.onnx`: the tree as `ai.onnx.ml` `TreeEnsembleClassifier` (one tree,
  `BRANCH_LEQ` nodes, the leaves' class frequencies as weights), its scores
  the `probabilities`, `ArgMax` and `Gather` giving `class_ids` and `labels`;
- `metadata.json`.

So `models.zoo` loads it (ONNX Runtime or the SavedModel) and `models.serve`
and `tensorflow/serving` serve it.

Inputs are float32, so each threshold is written as the largest float32 not
above it: for every float32 `x`, `x <= threshold32` exactly when `x <=
threshold`, and both runtimes predict what `DecisionTree.predict` does on the
same float32 rows. The export checks that on its rows (`check_rows`) and
refuses to publish a folder that does not.
"""

from __future__ import annotations

import numpy as np

from models.export import layout

OPSET = 17
ML_OPSET = 3
"""`ai.onnx.ml` 3: `TreeEnsembleClassifier` with float attributes (ONNX Runtime 1.16 and later)."""


def _arrays(tree):
    """The fitted tree as flat node arrays, thresholds as float32 rounded down."""
    spec = tree.to_dict()
    nodes = spec["nodes"]
    n = len(nodes)
    feature = np.zeros(n, np.int64)
    threshold = np.zeros(n, np.float32)
    left = np.arange(n, dtype=np.int64)  # a leaf steps to itself
    right = np.arange(n, dtype=np.int64)
    leaf = np.ones(n, bool)
    counts = np.asarray([node["counts"] for node in nodes], dtype=np.float64)
    for i, node in enumerate(nodes):
        if node["feature"] is not None:
            leaf[i] = False
            feature[i], left[i], right[i] = node["feature"], node["left"], node["right"]
            t = np.float32(node["threshold"])
            threshold[i] = t if float(t) <= node["threshold"] else np.nextafter(t, np.float32(-np.inf))
    probabilities = (counts / counts.sum(axis=1, keepdims=True)).astype(np.float32)
    return feature, threshold, left, right, leaf, probabilities, [str(c) for c in spec["classes"]]


def serving_function(tree):
    """The tree's `serving_default` as a `tf.function` of TensorFlow ops."""
    import tensorflow as tf

    feature, threshold, left, right, _, probabilities, classes = _arrays(tree)
    spec = tf.TensorSpec([None, tree.n_features_in_], tf.float32, name=layout.INPUT)
    feature_t, threshold_t = tf.constant(feature), tf.constant(threshold)
    left_t, right_t, probabilities_t = tf.constant(left), tf.constant(right), tf.constant(probabilities)
    labels_t = tf.constant(classes)
    depth = tree.depth

    @tf.function(input_signature=[spec])
    def serve(features):
        node = tf.zeros(tf.shape(features)[:1], tf.int64)
        for _ in range(depth):  # every row is at a leaf after `depth` steps; a leaf steps to itself
            value = tf.gather(features, tf.gather(feature_t, node), axis=1, batch_dims=1)
            node = tf.where(value <= tf.gather(threshold_t, node), tf.gather(left_t, node),
                            tf.gather(right_t, node))
        outputs = tf.gather(probabilities_t, node)
        class_ids = tf.argmax(outputs, axis=1, output_type=tf.int64)
        return {"probabilities": outputs, "class_ids": class_ids, "labels": tf.gather(labels_t, class_ids)}

    return serve


def onnx_model(tree):
    """The tree as an ONNX model: `features` in, `class_ids`, `labels`, `probabilities` out."""
    from onnx import TensorProto, helper

    feature, threshold, left, right, leaf, probabilities, classes = _arrays(tree)
    n, n_classes = len(feature), len(classes)
    leaves = np.flatnonzero(leaf)
    ensemble = helper.make_node(
        "TreeEnsembleClassifier", [layout.INPUT], ["tree_label", "probabilities"], domain="ai.onnx.ml",
        nodes_treeids=[0] * n, nodes_nodeids=list(range(n)), nodes_featureids=feature.tolist(),
        nodes_modes=["LEAF" if leaf[i] else "BRANCH_LEQ" for i in range(n)],
        nodes_values=threshold.tolist(), nodes_truenodeids=np.where(leaf, 0, left).tolist(),
        nodes_falsenodeids=np.where(leaf, 0, right).tolist(),
        nodes_missing_value_tracks_true=[0] * n,
        class_treeids=[0] * (len(leaves) * n_classes), class_nodeids=np.repeat(leaves, n_classes).tolist(),
        class_ids=np.tile(np.arange(n_classes), len(leaves)).tolist(),
        class_weights=probabilities[leaves].ravel().tolist(),
        classlabels_int64s=list(range(n_classes)), post_transform="NONE",
    )
    argmax = helper.make_node("ArgMax", ["probabilities"], ["class_ids"], axis=1, keepdims=0)
    names = helper.make_tensor("class_names", TensorProto.STRING, [n_classes], [c.encode() for c in classes])
    gather = helper.make_node("Gather", ["class_names", "class_ids"], ["labels"], axis=0)
    graph = helper.make_graph(
        [ensemble, argmax, gather], "decision_tree",
        [helper.make_tensor_value_info(layout.INPUT, TensorProto.FLOAT, [None, tree.n_features_in_])],
        [helper.make_tensor_value_info("class_ids", TensorProto.INT64, [None]),
         helper.make_tensor_value_info("labels", TensorProto.STRING, [None]),
         helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, n_classes])],
        initializer=[names],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET),
                                                   helper.make_opsetid("ai.onnx.ml", ML_OPSET)])


def export(tree, *, output_dir, name, task, metadata=None, write_extra=None, check_rows=None):
    """Exports a fitted `DecisionTree` as the next version of `output_dir/name`, whole or not at all.

    Args:
        tree: a fitted `models.lessons.tree.DecisionTree`.
        output_dir: the export root, e.g. `"saved_models"`.
        name: the model's folder name (the recipe's name).
        task: `binary` or `multiclass`.
        metadata: fields for `metadata.json`; `task`, `class_names`, `model_file`,
            `onnx` and `tensorflow_version` are filled in.
        write_extra: `callable(folder)` adding files before the folder is published.
        check_rows: rows (`[rows, n_features]`) both runtimes must predict as
            `tree.predict` does on them as float32; defaults to 64 random rows.

    Returns:
        The `Path` of the new version folder.

    Raises:
        ValueError: `task` is not a classification task, or a runtime predicts
            otherwise than the tree (a bug: nothing is published).
    """
    import json

    import tensorflow as tf

    if task not in ("binary", "multiclass"):
        raise ValueError(f"`task` must be 'binary' or 'multiclass' for a decision tree. Received: task={task!r}")
    rows = np.asarray(check_rows if check_rows is not None else
                      np.random.default_rng(0).normal(size=(64, tree.n_features_in_)), np.float32)
    expected = tree.predict(rows.astype(np.float64)).astype(str)

    def write(folder):
        (folder / "tree.json").write_text(json.dumps(tree.to_dict(), indent=1) + "\n", encoding="utf-8")
        serve = serving_function(tree)
        module = tf.Module()
        module.serve = serve
        tf.saved_model.save(module, str(folder), signatures={layout.SIGNATURE: serve.get_concrete_function()})
        got = [b.decode() for b in serve(rows)["labels"].numpy()]
        if got != expected.tolist():
            raise ValueError("The SavedModel of the tree predicts otherwise than the tree; this is a bug "
                             "in models.export.tree.")
        meta["onnx"] = _write_onnx(tree, folder, rows, expected)
        if write_extra is not None:
            write_extra(folder)

    meta = dict(metadata or {})
    meta.update(task=task, class_names=[str(c) for c in tree.classes_.tolist()], model_file="tree.json",
                tensorflow_version=tf.__version__)
    return layout.write_version(output_dir, name, write, meta)


def _write_onnx(tree, folder, rows, expected):
    import onnxruntime

    path = folder / layout.ONNX_FILE
    path.write_bytes(onnx_model(tree).SerializeToString())
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    labels = session.run(["labels"], {layout.INPUT: rows})[0]
    if [str(v) for v in labels] != expected.tolist():
        raise ValueError("The ONNX file of the tree predicts otherwise than the tree; this is a bug "
                         "in models.export.tree.")
    return {"file": layout.ONNX_FILE, "opset": OPSET, "ai.onnx.ml": ML_OPSET,
            "onnxruntime_version": onnxruntime.__version__}
