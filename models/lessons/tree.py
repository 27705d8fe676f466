"""Entropy, information gain, and a decision tree grown by information gain.

The notes end with how a decision tree is built: the entropy of a node,
E = -Σ p_i log2 p_i, measures how mixed its classes are (0 for a pure node, 1 bit
for two classes half and half), and a split is worth the entropy it removes, the
information gain H(parent) - Σ (n_child / n) H(child). A tree is grown by taking,
at every node, the split with the highest gain.

`entropy` reads three kinds of `values`:

| kind            | what `values` is                       | how `kind="auto"` tells it       |
|-----------------|----------------------------------------|----------------------------------|
| `labels`        | one class label per observation        | any non-number (str, bool, ...)  |
| `counts`        | how many observations of each class    | never: integers are ambiguous    |
| `probabilities` | p_i of each class, summing to 1        | floats                           |

Integers can be labels (`y` of a data set) or counts (the marbles `[1, 3, 4]`),
so `kind="auto"` refuses them and asks for `kind="labels"` or `kind="counts"`.

`DecisionTree` grows a classifier the same way as scikit-learn's
`DecisionTreeClassifier(criterion="entropy")`: numeric features, thresholds
halfway between consecutive distinct values, a row goes left when
`x <= threshold`. Each feature is sorted once at the root; every node sweeps
cumulative class counts along those orders (NumPy, vectorized), so growing depth 8
on 10,000 rows x 20 features takes a fraction of a second. Unlike scikit-learn, it
keeps features in float64 (scikit-learn rounds them to float32) and breaks ties
between equally good splits by the lowest feature index (scikit-learn by a random
feature order). NumPy only: no TensorFlow, no scikit-learn.

Example:

>>> import math
>>> from models.lessons import tree
>>> round(tree.entropy([1, 3, 4], kind="counts"), 4)  # the marbles, in bits
1.4056
>>> round(tree.entropy([1, 3, 4], base=math.e, kind="counts"), 4)  # the notes' "0.97"
0.9743
>>> tree.entropy(["red", "red"]), tree.entropy([0.5, 0.5])
(0.0, 1.0)
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np

KINDS = ("auto", "labels", "counts", "probabilities")
FORMAT = "nn-recipes/decision-tree"
FORMAT_VERSION = 1


# --------------------------------------------------------------------------- messages


def _shown(values, limit=8):
    """A short text form of `values` for an error message."""
    if isinstance(values, np.ndarray):
        values = values.tolist()
    try:
        items = list(values)
    except TypeError:
        return repr(values)
    head = ", ".join(repr(v) for v in items[:limit])
    return f"[{head}{', ...' if len(items) > limit else ''}]"


def _check_base(base):
    """Returns ln(base); refuses a base that is not a number > 0 other than 1."""
    if (isinstance(base, bool) or not isinstance(base, Real) or not math.isfinite(base)
            or base <= 0 or base == 1):
        raise ValueError(
            "`base` must be a number > 0 other than 1 (2 for bits, math.e for nats). "
            f"Received: base={base!r}"
        )
    return math.log(base)


def _check_kind(kind, allowed=KINDS):
    if kind not in allowed:
        raise ValueError(
            f"`kind` must be one of {', '.join(map(repr, allowed))}. Received: kind={kind!r}"
        )


# --------------------------------------------------------------------------- entropy


def _as_1d(values, name):
    """`values` as a non-empty 1-D array: numeric when every item is a number, else object."""
    if isinstance(values, (str, bytes)):
        raise ValueError(
            f"`{name}` must be a sequence of labels, counts or probabilities, not a string. "
            f"Received: {name}={values!r}. Pass list({values!r}) to count its characters."
        )
    if isinstance(values, np.ndarray):
        array = values
    else:
        try:
            items = list(values)
        except TypeError:
            raise ValueError(
                f"`{name}` must be a 1-D sequence of labels, counts or probabilities. "
                f"Received: {name}={values!r}"
            ) from None
        numeric = all(isinstance(v, (Real, np.number)) and not isinstance(v, (bool, np.bool_))
                      for v in items)
        if numeric and items:
            array = np.asarray(items)
        else:
            array = np.empty(len(items), dtype=object)
            array[:] = items
    if array.ndim != 1:
        raise ValueError(f"`{name}` must be 1-D. Received: {name} with shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"`{name}` must not be empty. Received: {name}=[]")
    return array


def _label_counts(array):
    """`{label: count}` of a 1-D array of labels, in sorted label order where labels sort."""
    if array.dtype != object:
        labels, counts = np.unique(array, return_counts=True)
        return dict(zip(labels.tolist(), counts.tolist()))
    try:
        return dict(Counter(array.tolist()))
    except TypeError:
        raise ValueError(
            "Labels must be hashable (numbers, strings, tuples). "
            f"Received: {_shown(array)}"
        ) from None


def _numbers(array, name, kind):
    if array.dtype.kind not in "iuf":
        raise ValueError(
            f"`{name}` must hold numbers when kind={kind!r}. Received: {name}={_shown(array)}"
        )
    array = array.astype(np.float64)
    if not np.all(np.isfinite(array)):
        raise ValueError(
            f"`{name}` must hold finite numbers. Received: {name}={_shown(array)}"
        )
    return array


def _counts(array, name):
    counts = _numbers(array, name, "counts")
    if np.any(counts < 0):
        where = int(np.flatnonzero(counts < 0)[0])
        raise ValueError(
            f"`{name}` must be non-negative counts; index {where} is {array[where].item()!r}. "
            f"Received: {name}={_shown(array)}"
        )
    if counts.sum() <= 0:
        raise ValueError(
            f"`{name}` must hold at least one positive count. Received: {name}={_shown(array)}"
        )
    return counts


def _probabilities(array, name):
    p = _numbers(array, name, "probabilities")
    if np.any((p < 0) | (p > 1)):
        raise ValueError(
            f"`{name}` must be probabilities in [0, 1]. Received: {name}={_shown(array)}. "
            "If they are class counts, pass `kind='counts'`."
        )
    eps = np.finfo(array.dtype).eps if array.dtype.kind == "f" else 0.0
    total = float(p.sum())
    if abs(total - 1.0) > 1e-6 + len(p) * eps:
        raise ValueError(
            f"`{name}` must be probabilities that sum to 1; they sum to {total:.6g}. "
            f"Received: {name}={_shown(array)}. If they are class counts or labels, pass "
            "`kind='counts'` or `kind='labels'`."
        )
    return p / total


def _distribution(values, kind, name="values"):
    """The class counts (or probabilities) that `values` describe, as float64."""
    _check_kind(kind)
    array = _as_1d(values, name)
    if kind == "auto":
        if array.dtype.kind in "iu":
            raise ValueError(
                f"`{name}` holds integers, which can be class labels or class counts. Pass "
                "`kind='labels'` (one label per observation, e.g. `y`) or `kind='counts'` "
                f"(one count per class, e.g. the marbles [1, 3, 4]). Received: {name}="
                f"{_shown(array)}"
            )
        kind = "probabilities" if array.dtype.kind == "f" else "labels"
    if kind == "labels":
        return np.asarray(list(_label_counts(array).values()), dtype=np.float64)
    if kind == "counts":
        return _counts(array, name)
    return _probabilities(array, name)


def _entropy_of(counts, log_base):
    """Entropy of non-negative `counts` (at least one positive), in the base of `log_base`."""
    counts = np.asarray(counts, dtype=np.float64)
    p = counts[counts > 0] / counts.sum()
    h = float(-(p * np.log(p)).sum() / log_base)
    return h if h > 0 else 0.0  # never -0.0


def entropy(values, base=2, *, kind="auto"):
    """The entropy E = -Σ p_i log p_i of a class distribution.

    `values` describes the distribution in one of three ways (see the module
    docstring): labels, one per observation; counts, one per class; or
    probabilities, one per class, summing to 1. `kind="auto"` reads
    non-numbers as labels and floats as probabilities, and refuses integers,
    which could be either labels or counts. Terms with p_i = 0 count as 0.

    Args:
        values: labels, counts or probabilities (a list or 1-D array, not empty).
        base: the logarithm's base: 2 gives bits, `math.e` nats. Defaults to `2`.
        kind: `"auto"`, `"labels"`, `"counts"` or `"probabilities"`.
            Defaults to `"auto"`.

    Returns:
        The entropy as a float >= 0: 0 for a pure node, log_base(k) for k equally
        likely classes.

    Raises:
        ValueError: empty `values`, negative counts, probabilities outside [0, 1]
            or not summing to 1 (within 1e-6), integers with `kind="auto"`, or a
            bad `base` or `kind`.

    Example:

    >>> entropy([8, 0, 0], kind="counts"), entropy([4, 4], kind="counts")
    (0.0, 1.0)
    >>> round(entropy(["yes", "no", "no", "no"]), 4)
    0.8113
    """
    log_base = _check_base(base)
    return _entropy_of(_distribution(values, kind), log_base)


def information_gain(parent, children, base=2, *, kind="labels"):
    """The entropy a split removes: H(parent) - Σ (n_child / n_parent) H(child).

    Args:
        parent: the labels of the node before the split (or its class counts,
            with `kind="counts"`).
        children: two or more groups that together hold exactly the parent's
            labels (or count vectors that add up to the parent's). A group may be
            empty; it weighs nothing.
        base: the logarithm's base: 2 gives bits, `math.e` nats. Defaults to `2`.
        kind: `"labels"` or `"counts"`. Defaults to `"labels"`.

    Returns:
        The gain as a float >= 0, in the unit of `base`.

    Raises:
        ValueError: an empty parent, fewer than two groups, groups that do not
            partition the parent, negative counts, or a bad `base` or `kind`.

    Example:

    >>> information_gain(["a", "a", "b", "b"], [["a", "a"], ["b", "b"]])
    1.0
    >>> information_gain([4, 4], [[3, 1], [1, 3]], kind="counts") > 0
    True
    """
    log_base = _check_base(base)
    _check_kind(kind, ("labels", "counts"))
    if isinstance(children, (str, bytes)) or not hasattr(children, "__iter__"):
        raise ValueError(
            f"`children` must be a list of two or more groups. Received: children={children!r}"
        )
    children = list(children)
    if len(children) < 2:
        raise ValueError(
            "`children` must be a list of two or more groups (a split makes at least two). "
            f"Received: {len(children)} group(s)"
        )
    if kind == "counts":
        parent_counts = _counts(_as_1d(parent, "parent"), "parent")
        groups = []
        for i, child in enumerate(children):
            counts = _numbers(_as_1d(child, f"children[{i}]"), f"children[{i}]", "counts")
            if counts.shape != parent_counts.shape or np.any(counts < 0):
                raise ValueError(
                    f"`children[{i}]` must be {len(parent_counts)} non-negative counts, one "
                    f"per class of `parent`. Received: children[{i}]={_shown(child)}"
                )
            groups.append(counts)
        total = np.sum(groups, axis=0)
        if not np.allclose(total, parent_counts, rtol=0, atol=1e-9):
            raise ValueError(
                "`children` must partition `parent`: their counts add up to "
                f"{_shown(total)}, not the parent's {_shown(parent_counts)}"
            )
    else:
        parent_map = _label_counts(_as_1d(parent, "parent"))
        child_maps = []
        for i, child in enumerate(children):
            if isinstance(child, (str, bytes)):
                raise ValueError(
                    f"`children[{i}]` must be a sequence of labels, not a string. "
                    f"Received: children[{i}]={child!r}"
                )
            child = list(child) if not isinstance(child, np.ndarray) else child
            child_maps.append(_label_counts(_as_1d(child, f"children[{i}]")) if len(child) else {})
        total = Counter()
        for counts in child_maps:
            total.update(counts)
        if dict(total) != parent_map:
            n_children, n_parent = sum(total.values()), sum(parent_map.values())
            raise ValueError(
                "`children` must partition `parent`: together they must hold exactly the "
                f"parent's labels. Received: {n_children} labels in children "
                f"({dict(total)}) for {n_parent} in parent ({parent_map})"
            )
        classes = list(parent_map)
        parent_counts = np.asarray([parent_map[c] for c in classes], dtype=np.float64)
        groups = [np.asarray([m.get(c, 0) for c in classes], dtype=np.float64)
                  for m in child_maps]
    n = parent_counts.sum()
    remaining = sum(g.sum() / n * _entropy_of(g, log_base) for g in groups if g.sum() > 0)
    gain = _entropy_of(parent_counts, log_base) - remaining
    return 0.0 if gain < 1e-12 else float(gain)


# --------------------------------------------------------------------------- splits


@dataclass(frozen=True)
class BestSplit:
    """A split of numeric rows: `x[:, feature] <= threshold` goes left.

    Args:
        feature: the column index.
        threshold: halfway between the two consecutive distinct values it separates.
        information_gain: the entropy it removes, in the unit of the `base` asked for.
    """

    feature: int
    threshold: float
    information_gain: float


def _check_x(x, name="X"):
    """`x` as a finite float64 array `[rows, features]`, with a clear error otherwise."""
    try:
        array = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(
            f"`{name}` must be numbers, an array [rows, features]. Received: {name} of type "
            f"{type(x).__name__}"
        ) from None
    if array.ndim != 2:
        hint = " Reshape a single row with `x.reshape(1, -1)`." if array.ndim == 1 else ""
        raise ValueError(
            f"`{name}` must be 2-D, [rows, features].{hint} Received: {name} with shape "
            f"{array.shape}"
        )
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(
            f"`{name}` must not be empty: it needs at least one row and one feature. "
            f"Received: {name} with shape {array.shape}"
        )
    bad = ~np.isfinite(array)
    if bad.any():
        row, col = (int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f"`{name}` must hold finite numbers; row {row}, column {col} is {array[row, col]}. "
            "Fill or drop missing values first."
        )
    return array


def _check_y(y, n_rows):
    labels = _as_1d(y, "y")
    if len(labels) != n_rows:
        raise ValueError(
            f"`y` must hold one label per row of `X`. Received: len(y)={len(labels)} for "
            f"{n_rows} rows of X"
        )
    if labels.dtype == object:
        try:
            classes = sorted(set(labels.tolist()))
        except TypeError:
            classes = list(dict.fromkeys(labels.tolist()))
        index = {c: i for i, c in enumerate(classes)}
        classes_array = np.empty(len(classes), dtype=object)
        classes_array[:] = classes
        return classes_array, np.asarray([index[v] for v in labels.tolist()], dtype=np.intp)
    classes, encoded = np.unique(labels, return_inverse=True)
    return classes, encoded.astype(np.intp)


def _xlogx_table(n):
    """x ln x for x = 0..n (0 at 0), to look up instead of taking logs of counts."""
    x = np.arange(n + 1, dtype=np.float64)
    return x * np.log(np.maximum(x, 1.0))


def _sweep(x_sorted, y_sorted, class_totals, table):
    """The best threshold over all features of one node.

    Args:
        x_sorted: `[features, m]` feature values, each row sorted ascending.
        y_sorted: `[features, m]` class indices in the same orders.
        class_totals: the node's count of each class.
        table: `_xlogx_table(n)` with n >= m.

    Returns:
        `(feature, position, score)`, the best split putting the first
        `position + 1` rows of that feature's order on the left, and `score` =
        Σ_children (n ln n - Σ_k c_k ln c_k) = m x the children's weighted entropy
        in nats; or `None` when every feature is constant here.
    """
    varies = np.flatnonzero(x_sorted[:, -1] > x_sorted[:, 0])  # constant features cannot split
    if varies.size == 0:
        return None
    if varies.size < len(x_sorted):
        x_sorted, y_sorted = x_sorted[varies], y_sorted[varies]
    n_features, m = y_sorted.shape
    n_left = np.arange(1, m)
    score = np.broadcast_to(table[n_left] + table[m - n_left], (n_features, m - 1)).copy()
    present = np.flatnonzero(class_totals)
    remainder = np.broadcast_to(n_left, (n_features, m - 1)).copy()
    for k in present[:-1]:  # the last class present is what the others leave
        left = np.cumsum(y_sorted[:, :-1] == k, axis=1)
        remainder -= left
        score -= table[left] + table[class_totals[k] - left]
    last = present[-1]
    score -= table[remainder] + table[class_totals[last] - remainder]
    score[x_sorted[:, 1:] <= x_sorted[:, :-1]] = np.inf  # only between distinct values
    best = int(np.argmin(score))  # first best: lowest feature, then lowest threshold
    row, position = divmod(best, m - 1)
    return int(varies[row]), position, float(score[row, position])


def _threshold(low, high):
    """Halfway between two consecutive distinct values, as scikit-learn computes it."""
    threshold = low / 2.0 + high / 2.0
    if threshold == high or not math.isfinite(threshold):
        threshold = low
    return float(threshold)


def best_split(X, y, base=2):
    """The feature and threshold whose split has the highest information gain.

    Thresholds are midpoints between consecutive distinct values of a feature
    (as scikit-learn's trees place them); a row goes left when
    `X[row, feature] <= threshold`. Among equally good splits the lowest feature
    index, then the lowest threshold, wins.

    Args:
        X: numbers, `[rows, features]`.
        y: one class label per row (any hashable values).
        base: the unit of the reported gain: 2 for bits, `math.e` for nats.
            Defaults to `2`.

    Returns:
        A `BestSplit(feature, threshold, information_gain)`, or `None` when no
        feature takes two distinct values.

    Raises:
        ValueError: empty or non-finite `X`, or `y` of another length.

    Example:

    >>> best_split([[1.0], [2.0], [3.0], [4.0]], ["a", "a", "b", "b"])
    BestSplit(feature=0, threshold=2.5, information_gain=1.0)
    """
    log_base = _check_base(base)
    x = _check_x(X)
    _, encoded = _check_y(y, x.shape[0])
    totals = np.bincount(encoded)
    m = len(encoded)
    order = np.argsort(x, axis=0, kind="stable").T
    x_sorted = np.take_along_axis(x.T, order, axis=1)
    table = _xlogx_table(m)
    found = _sweep(x_sorted, encoded[order], totals, table)
    if found is None:
        return None
    feature, position, score = found
    gain = (table[m] - table[totals].sum() - score) / m / log_base
    return BestSplit(
        feature=feature,
        threshold=_threshold(x_sorted[feature, position], x_sorted[feature, position + 1]),
        information_gain=float(gain) if gain > 0 else 0.0,
    )


# --------------------------------------------------------------------------- the tree


def _read_node(i, node, n_nodes, n_features, n_classes):
    """`(feature, threshold, left, right, counts)` of node `i` of a `to_dict` spec, checked."""
    try:
        inner = node["feature"] is not None
        f, lo, hi = (int(node["feature"]), int(node["left"]), int(node["right"])) if inner \
            else (-1, -1, -1)
        threshold = float(node["threshold"]) if inner else math.nan
        counts = [int(c) for c in node["counts"]]
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(
            f"`spec` node {i} must have `feature`, `threshold`, `left`, `right` (numbers, or "
            f"null at a leaf) and `counts`. Received: {node!r} ({type(error).__name__}: {error})"
        ) from None
    if inner and not (0 <= f < n_features and i < lo < n_nodes and i < hi < n_nodes
                      and lo != hi and math.isfinite(threshold)):
        raise ValueError(
            f"`spec` node {i} is not a valid split (feature {f}, threshold {threshold}, "
            f"children {lo} and {hi}); children must come after their parent."
        )
    if len(counts) != n_classes or min(counts) < 0 or sum(counts) == 0:
        raise ValueError(
            f"`spec` node {i} must have {n_classes} non-negative counts, not all 0. "
            f"Received: counts={counts}"
        )
    return f, threshold, lo, hi, counts


def _check_params(max_depth, min_samples_split):
    if max_depth is not None and (
        isinstance(max_depth, bool) or not isinstance(max_depth, Integral) or max_depth < 1
    ):
        raise ValueError(
            f"`max_depth` must be an integer >= 1 or None (grow until pure). "
            f"Received: max_depth={max_depth!r}"
        )
    if (isinstance(min_samples_split, bool) or not isinstance(min_samples_split, Integral)
            or min_samples_split < 2):
        raise ValueError(
            "`min_samples_split` must be an integer >= 2 (the fewest rows a node needs to be "
            f"split). Received: min_samples_split={min_samples_split!r}"
        )


class DecisionTree:
    """A classification tree grown by information gain (entropy), on numeric features.

    From the root, each node takes the split with the highest information gain
    (`best_split` on its rows) until it is pure, holds fewer than
    `min_samples_split` rows, sits at `max_depth`, or has only constant features.
    A leaf predicts its majority class (the first in `classes_` on a tie) and
    its class frequencies as probabilities, as scikit-learn's
    `DecisionTreeClassifier(criterion="entropy")` does.

    Args:
        max_depth: the deepest level a node may sit at (the root is level 0), or
            `None` to grow until every leaf is pure. Defaults to `None`.
        min_samples_split: the fewest rows a node must hold to be split.
            Defaults to `2`.

    Attributes (after `fit` or `from_dict`):
        classes_: the class labels, sorted; columns of `predict_proba`.
        n_features_in_: the number of features.
        feature_names_: their names, or `None`.
        depth, n_leaves, n_nodes: the size of the grown tree.

    Example:

    >>> t = DecisionTree(max_depth=2).fit([[1.0], [2.0], [3.0], [4.0]], ["a", "a", "b", "b"])
    >>> t.predict([[1.5], [3.5]]).tolist(), t.depth
    (['a', 'b'], 1)
    >>> DecisionTree.from_dict(t.to_dict()).predict([[0.0]]).tolist()
    ['a']
    """

    def __init__(self, max_depth=None, min_samples_split=2):
        _check_params(max_depth, min_samples_split)
        self.max_depth = max_depth
        self.min_samples_split = min_samples_split
        self.classes_ = None

    def __repr__(self):
        return (f"DecisionTree(max_depth={self.max_depth!r}, "
                f"min_samples_split={self.min_samples_split!r})")

    # ---------------------------------------------------------------- growing

    def fit(self, X, y, *, feature_names=None):
        """Grows the tree on `X` and labels `y`.

        Args:
            X: numbers, `[rows, features]` (no NaN or inf).
            y: one class label per row (numbers or strings).
            feature_names: a name for each column of `X`, used by `to_text` and
                `to_dict`. Defaults to `None` (a DataFrame's column names, if any).

        Returns:
            The tree itself.

        Raises:
            ValueError: empty or non-finite `X`, `y` of another length, or
                `feature_names` of another length.
        """
        if feature_names is None and hasattr(X, "columns"):  # a pandas DataFrame
            feature_names = list(X.columns)
        x = _check_x(X)
        classes, encoded = _check_y(y, x.shape[0])
        n, n_features = x.shape
        if feature_names is not None:
            feature_names = [str(f) for f in feature_names]
            if len(feature_names) != n_features:
                raise ValueError(
                    f"`feature_names` must name each of the {n_features} columns of `X`. "
                    f"Received: {len(feature_names)} names"
                )
        n_classes = len(classes)
        table = _xlogx_table(n)
        xt = np.ascontiguousarray(x.T)
        order = np.ascontiguousarray(np.argsort(x, axis=0, kind="stable").T)  # sorted once
        on_left = np.zeros(n, dtype=bool)
        feature, threshold, left, right, counts = [], [], [], [], []
        stack = [(order, 0, -1, 0)]  # (row orders [features, m], depth, parent, side)
        while stack:
            rows, depth, parent, side = stack.pop()
            node = len(feature)
            if parent >= 0:
                (left if side == 0 else right)[parent] = node
            m = rows.shape[1]
            node_counts = np.bincount(encoded[rows[0]], minlength=n_classes)
            feature.append(-1)
            threshold.append(math.nan)
            left.append(-1)
            right.append(-1)
            counts.append(node_counts)
            if ((self.max_depth is not None and depth >= self.max_depth)
                    or m < self.min_samples_split or np.count_nonzero(node_counts) < 2):
                continue
            x_sorted = np.take_along_axis(xt, rows, axis=1)
            found = _sweep(x_sorted, encoded[rows], node_counts, table)
            if found is None:
                continue
            f, position, _ = found
            feature[node] = f
            threshold[node] = _threshold(x_sorted[f, position], x_sorted[f, position + 1])
            going_left = rows[f, : position + 1]
            on_left[going_left] = True
            mask = on_left[rows]
            on_left[going_left] = False
            stack.append((rows[~mask].reshape(n_features, m - position - 1), depth + 1, node, 1))
            stack.append((rows[mask].reshape(n_features, position + 1), depth + 1, node, 0))
        self._set_tree(classes, n_features, feature_names, feature, threshold, left, right, counts)
        return self

    def _set_tree(self, classes, n_features, feature_names, feature, threshold, left, right,
                  counts):
        self.classes_ = classes
        self.n_features_in_ = int(n_features)
        self.feature_names_ = feature_names
        self._feature = np.asarray(feature, dtype=np.intp)
        self._threshold = np.asarray(threshold, dtype=np.float64)
        self._left = np.asarray(left, dtype=np.intp)
        self._right = np.asarray(right, dtype=np.intp)
        self._counts = np.asarray(counts, dtype=np.int64).reshape(len(feature), len(classes))
        depths = np.zeros(len(feature), dtype=np.intp)
        for node in range(len(feature)):  # children come after their parent
            if self._feature[node] >= 0:
                depths[self._left[node]] = depths[self._right[node]] = depths[node] + 1
        self._depths = depths

    # ---------------------------------------------------------------- the fitted tree

    def _check_fitted(self):
        if self.classes_ is None:
            raise ValueError(
                "This DecisionTree is not fitted yet. Call `fit(X, y)` first, or load a "
                "fitted one with `DecisionTree.from_dict`."
            )

    @property
    def depth(self):
        """The level of the deepest leaf (0 for a tree that is one leaf)."""
        self._check_fitted()
        return int(self._depths.max())

    @property
    def n_leaves(self):
        """The number of leaves."""
        self._check_fitted()
        return int(np.count_nonzero(self._feature < 0))

    @property
    def n_nodes(self):
        """The number of nodes, leaves included."""
        self._check_fitted()
        return len(self._feature)

    def _node_entropy(self, node):
        return _entropy_of(self._counts[node], math.log(2))

    def _leaves(self, X):
        self._check_fitted()
        x = _check_x(X)
        if x.shape[1] != self.n_features_in_:
            raise ValueError(
                f"`X` must have {self.n_features_in_} columns, the features the tree was fit "
                f"on. Received: X with shape {x.shape}"
            )
        node = np.zeros(len(x), dtype=np.intp)
        active = np.arange(len(x))
        while active.size:
            at = node[active]
            inner = self._feature[at] >= 0
            active, at = active[inner], at[inner]
            go_left = x[active, self._feature[at]] <= self._threshold[at]
            node[active] = np.where(go_left, self._left[at], self._right[at])
        return node

    def predict_proba(self, X):
        """The class frequencies of the leaf each row lands in.

        Args:
            X: numbers, `[rows, n_features_in_]`.

        Returns:
            float64 array `[rows, len(classes_)]`; each row sums to 1.
        """
        leaves = self._leaves(X)
        counts = self._counts[leaves].astype(np.float64)
        return counts / counts.sum(axis=1, keepdims=True)

    def predict(self, X):
        """The majority class of the leaf each row lands in.

        Args:
            X: numbers, `[rows, n_features_in_]`.

        Returns:
            An array of labels from `classes_`, one per row.
        """
        leaves = self._leaves(X)
        return self.classes_[self._counts[leaves].argmax(axis=1)]

    # ---------------------------------------------------------------- JSON

    def to_dict(self):
        """The fitted tree as a JSON-ready dict.

        Nodes are listed in preorder (a node, its left subtree, its right
        subtree); `left` / `right` are node indices, `null` at leaves; `counts`
        are the training rows of each class (in `classes` order) that reached the
        node; `entropy` is theirs, in bits. Thresholds are written as Python
        floats, which JSON carries exactly, so a round trip predicts identically.
        """
        self._check_fitted()
        nodes = []
        for i in range(self.n_nodes):
            inner = bool(self._feature[i] >= 0)
            nodes.append({
                "feature": int(self._feature[i]) if inner else None,
                "threshold": float(self._threshold[i]) if inner else None,
                "left": int(self._left[i]) if inner else None,
                "right": int(self._right[i]) if inner else None,
                "counts": self._counts[i].tolist(),
                "entropy": self._node_entropy(i),
            })
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "criterion": "entropy",
            "params": {"max_depth": self.max_depth, "min_samples_split": self.min_samples_split},
            "n_features": self.n_features_in_,
            "feature_names": self.feature_names_,
            "classes": self.classes_.tolist(),
            "depth": self.depth,
            "n_leaves": self.n_leaves,
            "nodes": nodes,
        }

    def to_json(self, **kwargs):
        """`to_dict()` as JSON text; keyword arguments go to `json.dumps`."""
        return json.dumps(self.to_dict(), **kwargs)

    @classmethod
    def from_json(cls, text):
        """The tree that `to_json` wrote."""
        return cls.from_dict(json.loads(text))

    @classmethod
    def from_dict(cls, spec):
        """The tree that `to_dict` wrote (e.g. read back from `tree.json`).

        Raises:
            ValueError: a dict that is not a decision tree of this format, or whose
                nodes do not form a tree.
        """
        if not isinstance(spec, dict) or spec.get("format") != FORMAT:
            raise ValueError(
                f"`spec` must be a dict written by `DecisionTree.to_dict` (format {FORMAT!r}). "
                f"Received: {type(spec).__name__} with format "
                f"{spec.get('format') if isinstance(spec, dict) else None!r}"
            )
        if spec.get("format_version") != FORMAT_VERSION:
            raise ValueError(
                f"`spec` has format_version {spec.get('format_version')!r}; this version of "
                f"the package reads {FORMAT_VERSION}. Re-export the tree."
            )
        try:
            params = spec["params"]
            tree = cls(max_depth=params["max_depth"],
                       min_samples_split=params["min_samples_split"])
            n_features = int(spec["n_features"])
            classes = list(spec["classes"])
            nodes = list(spec["nodes"])
        except (KeyError, TypeError) as error:
            raise ValueError(f"`spec` is missing {error} of a decision tree dict.") from None
        classes_array = np.asarray(classes)
        if classes_array.ndim != 1:
            classes_array = np.empty(len(classes), dtype=object)
            classes_array[:] = [tuple(c) if isinstance(c, list) else c for c in classes]
        if not nodes or not classes:
            raise ValueError(
                f"`spec` must list at least one node and one class. Received: {len(nodes)} "
                f"nodes, {len(classes)} classes"
            )
        columns = list(zip(*(_read_node(i, node, len(nodes), n_features, len(classes))
                             for i, node in enumerate(nodes))))
        feature, threshold, left, right, counts = columns
        tree._set_tree(classes_array, n_features, spec.get("feature_names"), feature, threshold,
                       left, right, counts)
        return tree

    # ---------------------------------------------------------------- text

    def to_text(self, feature_names=None, *, max_depth=None, digits=6):
        """The tree as indented plain text, one node a line.

        An inner node reads `feature <= threshold?` with its rows `n`, class
        counts, entropy (bits) and the information gain of its split; its `yes`
        branch (rows with `feature <= threshold`) comes first. A leaf reads
        `-> class`.

        Args:
            feature_names: names for the columns. Defaults to the names given to
                `fit`, else `x[0]`, `x[1]`, ...
            max_depth: show nodes down to this level only. Defaults to `None` (all).
            digits: significant digits of thresholds. Defaults to `6`.

        Returns:
            The text, lines joined by newlines.
        """
        self._check_fitted()
        names = feature_names or self.feature_names_
        if names is None:
            names = [f"x[{i}]" for i in range(self.n_features_in_)]
        classes = ", ".join(str(c) for c in self.classes_.tolist())
        lines = [f"DecisionTree: depth {self.depth}, {self.n_leaves} leaves, "
                 f"classes [{classes}], counts in that order, entropy in bits"]

        def describe(node):
            counts = self._counts[node]
            n = int(counts.sum())
            stats = f"n={n} {counts.tolist()} entropy {self._node_entropy(node):.3f}"
            if self._feature[node] < 0:
                return f"-> {self.classes_[counts.argmax()]}  {stats}"
            lo, hi = self._left[node], self._right[node]
            n_lo, n_hi = self._counts[lo].sum(), self._counts[hi].sum()
            gain = self._node_entropy(node) - (
                n_lo * self._node_entropy(lo) + n_hi * self._node_entropy(hi)) / n
            name = names[self._feature[node]]
            return (f"{name} <= {self._threshold[node]:.{digits}g}?  {stats}  "
                    f"gain {max(gain, 0.0):.3f}")

        stack = [(0, "", "")]
        while stack:
            node, prefix, branch = stack.pop()
            lines.append(prefix + branch + describe(node))
            depth = self._depths[node]
            if self._feature[node] < 0:
                continue
            inner_prefix = prefix + {"": "", "|": "|   ", "`": "    "}[branch[:1]]
            if max_depth is not None and depth >= max_depth:
                lines.append(inner_prefix + "`-- ...")
                continue
            stack.append((self._right[node], inner_prefix, "`-- no:  "))
            stack.append((self._left[node], inner_prefix, "|-- yes: "))
        return "\n".join(lines)

    def __str__(self):
        return self.to_text() if self.classes_ is not None else repr(self)
