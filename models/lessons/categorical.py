"""Text categories and gaps: what the table holds, and the scikit-learn pipeline to beat.

`columns(dataset, encoding)` says, per column, its kind, how many cells are
missing and (categorical) how many categories the training rows have: what the
model's front-end (`models.data.encoding`) turns into numbers.
`pipeline_scores(data)` fits scikit-learn's textbook answer to the same
problem on the same training rows, from the raw columns:

    ColumnTransformer([
        ("numbers", make_pipeline(SimpleImputer(add_indicator=True), StandardScaler()), numeric),
        ("categories", make_pipeline(SimpleImputer(strategy="constant", fill_value="(missing)"),
                                     OneHotEncoder(handle_unknown="ignore")), categorical),
    ]) -> LogisticRegression

and scores it on the test rows, so the network's numbers have a yardstick.
"""

from __future__ import annotations

import numpy as np

from models.training import evaluation


def columns(dataset, encoding):
    """`{column: {"kind", "missing", "vocabulary_size"}}`, the vocabulary of the training rows."""
    out = {}
    x = np.asarray(dataset.x)
    learned = {f.name: f for f in encoding.features} if encoding is not None else {}
    for j, column in enumerate(dataset.columns or ()):
        entry = {"kind": column.kind, "missing": int(np.isnan(x[:, j]).sum())}
        if column.kind == "categorical":
            entry["vocabulary_size"] = len(learned[column.name].vocabulary)
        out[column.name] = entry
    return out


def raw_frame(dataset, x):
    """Code rows as a 2-D object array: floats (NaN for missing), categories as text (None)."""
    frame = np.empty(x.shape, dtype=object)
    for j, column in enumerate(dataset.columns):
        values = x[:, j]
        if column.kind == "numeric":
            frame[:, j] = values.astype(np.float64)
            continue
        names = np.array([*column.categories, None], dtype=object)
        frame[:, j] = names[np.where(np.isnan(values), len(column.categories),
                                     np.nan_to_num(values)).astype(np.int64)]
    return frame


def pipeline(dataset):
    """The scikit-learn pipeline of the module docstring, unfitted."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric = [j for j, c in enumerate(dataset.columns) if c.kind == "numeric"]
    categorical = [j for j, c in enumerate(dataset.columns) if c.kind == "categorical"]
    front = ColumnTransformer([
        ("numbers", make_pipeline(SimpleImputer(add_indicator=True), StandardScaler()), numeric),
        ("categories", make_pipeline(
            SimpleImputer(strategy="constant", fill_value="(missing)", missing_values=None),
            OneHotEncoder(handle_unknown="ignore")), categorical),
    ])
    return make_pipeline(front, LogisticRegression(max_iter=2000))


def pipeline_scores(data):
    """Test metrics of `pipeline` fitted on `data`'s training rows (classification)."""
    dataset, split = data.dataset, data.split
    model = pipeline(dataset).fit(raw_frame(dataset, split.x_train), split.y_train)
    probabilities = model.predict_proba(raw_frame(dataset, split.x_test))
    if data.task == "binary":
        probabilities = probabilities[:, 1:]
    return evaluation.metrics(data.task, split.y_test, probabilities, data.n_classes)
