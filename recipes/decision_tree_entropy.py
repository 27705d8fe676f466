"""Decision trees: entropy, information gain, and a tree grown by them.

Notes: "Let's Learn How To Build A DT using Entropy & Information Gain" (the
marbles, the pure node, the half-and-half node).

Entropy E = -Σ p_i log p_i measures how mixed a node's classes are. The notes'
marbles (1 red, 3 purple, 4 yellow) have E = 1.4056 bits; the notes print "0.97",
which is the same entropy in nats (natural log: 0.9743), although their formula
says log2 (ERRATA #1). A pure node (8 red) has E = 0: nothing is left to
learn there, so a tree stops splitting it. Half yellow, half purple has E = 1 bit
(0.6931 nats), the most two classes can have; the notes leave it blank
(ERRATA #2). A split is worth its information gain, the parent's entropy
minus its children's, weighted by their sizes; a tree is grown by taking the split
with the highest gain at every node.

This recipe computes those numbers with `models.lessons.tree`, finds the best first split
of the Wisconsin breast-cancer training rows, grows a depth-4 tree on them, and
tests it on the held-out rows beside scikit-learn's
`DecisionTreeClassifier(criterion="entropy", max_depth=4)`. The tree is exported
as `OUTPUT_DIR/decision-tree-entropy/VERSION/` like every model (`models.export.tree`):
a SavedModel with the `serving_default` signature, `model.onnx`, and `tree.json` (with
`metadata.json` and the printed tree as `tree.txt`); `zoo.load` and `models.serve`
serve it, and `DecisionTree.from_dict(json.load(f))` loads `tree.json`.

What to look at: the marbles in bits and nats; the first split (ours and
scikit-learn's pick the same feature and threshold, and the gain is the same);
the two test accuracies (the same rule grows the same tree up to ties: where two
features split a node into the same groups, ours takes the lower feature index and
scikit-learn the first in a random feature order, and the subtrees below can differ
by a row or two of test accuracy); and the printed tree, where entropy falls from the root
toward the leaves. Report `details`: `marbles.entropy_bits`,
`marbles.entropy_nats`, `pure`, `half_half_bits`, `best_split` (`feature`,
`threshold`, `information_gain`), `tree.test_accuracy`,
`tree.sklearn_test_accuracy`, `tree.depth`.
"""

from recipes.core.registry import register

DATASET = "breast_cancer"
MAX_DEPTH = 4
MARBLES = {"red": 1, "purple": 3, "yellow": 4}


@register(
    "decision-tree-entropy",
    scenario="Decision tree: entropy and information gain",
    data="breast cancer (scikit-learn)",
    summary="Marbles' entropy in bits and nats, the best first split, a depth-4 tree "
    "against scikit-learn's.",
    options=("no_export",),
    tensorflow=False,
)
def decision_tree_entropy(run):
    import json
    import math
    import time

    import numpy as np
    import sklearn
    from sklearn.tree import DecisionTreeClassifier

    from models import data
    from models.export import tree as tree_export
    from models.lessons.tree import DecisionTree, best_split, entropy
    from recipes.core.errors import RunError
    from recipes.core.report import Result, Table

    config = run.config
    started = time.perf_counter()

    # The notes' examples, in bits and in nats.
    marbles = list(MARBLES.values())
    examples = {
        "marbles 1 red / 3 purple / 4 yellow": (marbles, '"0.97" (nats; ERRATA #1)'),
        "pure: 8 red": ([8, 0, 0], "0"),
        "half yellow, half purple": ([4, 4], "blank (ERRATA #2)"),
    }
    entropy_rows = [
        [name, entropy(counts, kind="counts"), entropy(counts, math.e, kind="counts"), notes]
        for name, (counts, notes) in examples.items()
    ]

    # Real data: fit on the train and validation parts (nothing is tuned), test on the rest.
    dataset = data.load(DATASET)
    try:
        parts = data.split(dataset, config.seed)
    except data.DataError as error:
        raise RunError(str(error)) from None
    names = np.asarray(dataset.class_names)
    x_fit = np.concatenate([parts.x_train, parts.x_val])
    y_fit = names[np.concatenate([parts.y_train, parts.y_val])]
    y_test = names[parts.y_test]

    first = best_split(x_fit, y_fit)
    fit_started = time.perf_counter()
    tree = DecisionTree(max_depth=MAX_DEPTH).fit(x_fit, y_fit, feature_names=dataset.feature_names)
    fit_seconds = time.perf_counter() - fit_started
    sk_started = time.perf_counter()
    reference = DecisionTreeClassifier(
        criterion="entropy", max_depth=MAX_DEPTH, random_state=config.seed
    ).fit(x_fit, y_fit)
    sk_seconds = time.perf_counter() - sk_started
    accuracy = float(np.mean(tree.predict(parts.x_test) == y_test))
    sk_accuracy = float(np.mean(reference.predict(parts.x_test) == y_test))
    sk_root = reference.tree_  # node 0 is the root; its children are named, not numbered 1, 2
    lo, hi = sk_root.children_left[0], sk_root.children_right[0]
    n_rows, impurity = sk_root.n_node_samples, sk_root.impurity
    sk_gain = impurity[0] - (n_rows[lo] * impurity[lo] + n_rows[hi] * impurity[hi]) / n_rows[0]

    agree = int(np.sum(tree.predict(parts.x_test) == reference.predict(parts.x_test)))
    export_path, export_seconds = None, 0.0
    messages = [f"The two trees predict the same class for {agree} of {len(y_test)} test rows "
                "(where they differ, look for a node where two features split the rows into "
                "the same groups: the two trees break such ties differently)."]
    if config.export:
        text = tree.to_text()

        def write_text(folder):
            (folder / "tree.txt").write_text(text + "\n", encoding="utf-8")

        metadata = {
            "recipe": config.recipe,
            "task": dataset.task,
            "model_type": "decision-tree",
            "model_file": "tree.json",
            "feature_names": list(dataset.feature_names),
            "class_names": [str(c) for c in tree.classes_.tolist()],
            "target": dataset.target,
            "metrics": {"accuracy": accuracy},
            "hyperparameters": {"criterion": "entropy", "max_depth": MAX_DEPTH,
                                "min_samples_split": tree.min_samples_split, "seed": config.seed},
            "dataset": {
                "name": dataset.name, "rows": int(len(dataset.y)), "sha256": dataset.sha256,
                "description": dataset.description,
                "split": {"fit": len(y_fit), "test": len(y_test)},
            },
            "numpy_version": np.__version__,
            "device": "cpu",
        }
        export_started = time.perf_counter()
        export_path = tree_export.export(tree, output_dir=config.output_dir, name=config.recipe,
                                         task=dataset.task, metadata=metadata,
                                         write_extra=write_text, check_rows=parts.x_test)
        export_seconds = time.perf_counter() - export_started
        reloaded = DecisionTree.from_dict(
            json.loads((export_path / "tree.json").read_text(encoding="utf-8")))
        if not np.array_equal(reloaded.predict(parts.x_test), tree.predict(parts.x_test)):
            raise RunError(
                f"The exported tree at {export_path} does not predict like the tree in memory. "
                "This is a bug in models.lessons.tree; re-run with --debug and report it."
            )
        messages.append("Exported tree reloads and predicts the test rows identically.")
        export_path = str(export_path)

    feature = dataset.feature_names[first.feature]
    details = {
        "marbles": {"entropy_bits": entropy_rows[0][1], "entropy_nats": entropy_rows[0][2]},
        "pure": entropy_rows[1][1],
        "half_half_bits": entropy_rows[2][1],
        "best_split": {"feature": feature, "threshold": first.threshold,
                       "information_gain": first.information_gain},
        "tree": {"test_accuracy": accuracy, "sklearn_test_accuracy": sk_accuracy,
                 "depth": tree.depth},
    }
    return Result(
        recipe=config.recipe,
        metrics={"accuracy": accuracy},
        details=details,
        timing={"fit_seconds": fit_seconds, "sklearn_fit_seconds": sk_seconds,
                "export_seconds": export_seconds,
                "total_seconds": time.perf_counter() - started},
        export=export_path,
        tables=[
            Table("Entropy of the notes' examples", ["node", "bits", "nats", "the notes say"],
                  entropy_rows),
            Table(f"Best first split ({len(y_fit)} fit rows)",
                  ["tree", "feature", "threshold", "information gain (bits)"],
                  [["models.lessons.tree", feature, first.threshold, first.information_gain],
                   [f"scikit-learn {sklearn.__version__}",
                    dataset.feature_names[sk_root.feature[0]], float(sk_root.threshold[0]),
                    float(sk_gain)]]),
            Table(f"Depth-{MAX_DEPTH} entropy trees ({len(y_test)} test rows)",
                  ["tree", "test accuracy", "depth", "leaves", "fit seconds"],
                  [["models.lessons.tree", accuracy, tree.depth, tree.n_leaves, fit_seconds],
                   ["scikit-learn", sk_accuracy, int(reference.get_depth()),
                    int(reference.get_n_leaves()), sk_seconds]]),
        ],
        messages=[
            f"Data: {dataset.description} ({len(y_fit)} rows to fit: train and validation "
            f"parts; {len(y_test)} test rows)",
            *messages,
            "",
            tree.to_text(),
        ],
    )
