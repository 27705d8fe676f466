"""Benchmark: `models.lessons.tree.DecisionTree` beside scikit-learn's entropy tree.

Grows both trees at the same depth on the same rows, several times, and reports
the median fit and predict seconds, the ratio ours / scikit-learn, the test
accuracy of each and how often they predict the same class. Data sets:

- `generated`: scikit-learn's `make_classification`, 10,000 rows x 20 features
  (10 informative), 3 classes, float32, a seeded 80/20 split; the target
  is growing depth 8 on it in well under 2 s;
- `breast_cancer`, `digits`: bundled real data (`models.data`), cut by
  `models.data.split` (train and validation parts to fit, the test part to test).

Run by hand, not in CI:

    python scripts/bench_tree.py                       # depth 8, 5 repeats
    python scripts/bench_tree.py --depth 4 --repeats 9 --json reports/bench_tree.json

It prints a table and writes JSON (default `reports/bench_tree.json`, an ignored folder).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models import data  # noqa: E402
from models.lessons.tree import DecisionTree  # noqa: E402


def generated(rows, features, seed):
    """`make_classification` data as float32, cut 80/20 with the seed."""
    from sklearn.datasets import make_classification
    from sklearn.model_selection import train_test_split

    x, y = make_classification(
        n_samples=rows, n_features=features, n_informative=min(10, features), n_redundant=0,
        n_classes=3, random_state=seed,
    )
    x = x.astype(np.float32)
    x_fit, x_test, y_fit, y_test = train_test_split(x, y, test_size=0.2, random_state=seed,
                                                    stratify=y)
    return f"generated {rows}x{features}", x_fit, y_fit, x_test, y_test


def bundled(name, seed):
    """A bundled data set: fit on the train and validation parts, test on the test part."""
    dataset = data.load(name)
    parts = data.split(dataset, seed)
    x_fit = np.concatenate([parts.x_train, parts.x_val])
    y_fit = np.concatenate([parts.y_train, parts.y_val])
    label = f"{name} {dataset.x.shape[0]}x{dataset.x.shape[1]}"
    return label, x_fit, y_fit, parts.x_test, parts.y_test


def timed(fn, repeats):
    """The result of the last call and the median seconds of `repeats` calls."""
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        result = fn()
        seconds.append(time.perf_counter() - started)
    return result, statistics.median(seconds), seconds


def bench(label, x_fit, y_fit, x_test, y_test, depth, repeats, seed):
    from sklearn.tree import DecisionTreeClassifier

    ours, ours_fit, ours_all = timed(lambda: DecisionTree(max_depth=depth).fit(x_fit, y_fit),
                                     repeats)
    theirs, sk_fit, sk_all = timed(
        lambda: DecisionTreeClassifier(criterion="entropy", max_depth=depth,
                                       random_state=seed).fit(x_fit, y_fit), repeats)
    ours_pred, ours_predict, _ = timed(lambda: ours.predict(x_test), repeats)
    sk_pred, sk_predict, _ = timed(lambda: theirs.predict(x_test), repeats)
    return {
        "data": label,
        "fit_rows": int(len(y_fit)),
        "test_rows": int(len(y_test)),
        "features": int(x_fit.shape[1]),
        "classes": int(len(np.unique(y_fit))),
        "max_depth": depth,
        "ours": {"fit_seconds_median": ours_fit, "fit_seconds": ours_all,
                 "predict_seconds_median": ours_predict,
                 "test_accuracy": float(np.mean(ours_pred == y_test)),
                 "depth": ours.depth, "leaves": ours.n_leaves},
        "sklearn": {"fit_seconds_median": sk_fit, "fit_seconds": sk_all,
                    "predict_seconds_median": sk_predict,
                    "test_accuracy": float(np.mean(sk_pred == y_test)),
                    "depth": int(theirs.get_depth()), "leaves": int(theirs.get_n_leaves())},
        "fit_ratio_ours_over_sklearn": ours_fit / sk_fit,
        "predict_ratio_ours_over_sklearn": ours_predict / sk_predict,
        "test_agreement": float(np.mean(ours_pred == sk_pred)),
    }


def table(results):
    columns = ["data", "depth", "ours fit s", "sklearn fit s", "ratio", "ours acc",
               "sklearn acc", "agree", "leaves ours/sk"]
    rows = [[r["data"], str(r["max_depth"]), f"{r['ours']['fit_seconds_median']:.4f}",
             f"{r['sklearn']['fit_seconds_median']:.4f}",
             f"{r['fit_ratio_ours_over_sklearn']:.2f}", f"{r['ours']['test_accuracy']:.4f}",
             f"{r['sklearn']['test_accuracy']:.4f}", f"{r['test_agreement']:.4f}",
             f"{r['ours']['leaves']}/{r['sklearn']['leaves']}"] for r in results]
    widths = [max(len(c), *(len(row[i]) for row in rows)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths)).rstrip(),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in rows]
    return "\n".join(lines)


def main(argv=None):
    import sklearn

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--depth", type=int, default=8, help="max_depth of both trees (default 8)")
    parser.add_argument("--repeats", type=int, default=5, help="fits per tree (default 5)")
    parser.add_argument("--rows", type=int, default=10_000, help="generated rows (default 10000)")
    parser.add_argument("--features", type=int, default=20, help="generated features (default 20)")
    parser.add_argument("--data", default="generated,breast_cancer,digits",
                        help="comma-separated: generated and/or bundled names")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default="reports/bench_tree.json", help="where to write JSON")
    args = parser.parse_args(argv)
    if args.depth < 1 or args.repeats < 1:
        parser.error("--depth and --repeats must be >= 1")

    results = []
    for name in args.data.split(","):
        if name == "generated":
            sets = generated(args.rows, args.features, args.seed)
        else:
            sets = bundled(name, args.seed)
        results.append(bench(*sets, depth=args.depth, repeats=args.repeats, seed=args.seed))
    print(f"Decision trees, criterion entropy, depth {args.depth}, median of {args.repeats} "
          f"fits (numpy {np.__version__}, scikit-learn {sklearn.__version__}, "
          f"{platform.processor() or platform.machine()})")
    print(table(results))
    out = {
        "max_depth": args.depth, "repeats": args.repeats, "seed": args.seed,
        "numpy_version": np.__version__, "sklearn_version": sklearn.__version__,
        "python_version": platform.python_version(), "machine": platform.machine(),
        "results": results,
    }
    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    print(f"JSON: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
