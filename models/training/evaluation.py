"""Held-out metrics by task, and the simple baselines that give them scale.

| task       | metrics                                   | baselines                              |
|------------|-------------------------------------------|----------------------------------------|
| binary     | accuracy, AUC, precision, recall          | majority class, logistic regression    |
| multiclass | accuracy, confusion matrix                | majority class, logistic regression    |
| regression | MAE, RMSE, R²                             | training mean, linear regression       |

Metrics are scikit-learn's, computed from the model's outputs on raw rows.
"""

from __future__ import annotations

import numpy as np


def classes_from_probabilities(task, outputs):
    """Class indices from a classifier's outputs (`[rows, 1]` sigmoid or `[rows, k]` softmax)."""
    outputs = np.asarray(outputs)
    if task == "binary":
        return (outputs.reshape(-1) > 0.5).astype(np.int64)
    return outputs.argmax(axis=1).astype(np.int64)


def metrics(task, y_true, outputs, n_classes=None):
    """Returns the test metrics of one model as a dict of floats (and lists).

    Args:
        task: `binary`, `multiclass` or `regression`.
        y_true: true class indices or values.
        outputs: the model's outputs: sigmoid probabilities `[rows, 1]`, softmax
            probabilities `[rows, k]`, or predictions `[rows]` / `[rows, 1]`.
        n_classes: the number of classes (multiclass confusion matrix size).
    """
    from sklearn import metrics as skm

    y_true = np.asarray(y_true)
    if task == "regression":
        predicted = np.asarray(outputs, dtype=np.float64).reshape(-1)
        return {
            "mae": float(skm.mean_absolute_error(y_true, predicted)),
            "rmse": float(np.sqrt(skm.mean_squared_error(y_true, predicted))),
            "r2": float(skm.r2_score(y_true, predicted)),
        }
    predicted = classes_from_probabilities(task, outputs)
    result = {"accuracy": float(skm.accuracy_score(y_true, predicted))}
    if task == "binary":
        scores = np.asarray(outputs).reshape(-1)
        both = len(np.unique(y_true)) == 2
        result.update(
            auc=float(skm.roc_auc_score(y_true, scores)) if both else float("nan"),
            precision=float(skm.precision_score(y_true, predicted, zero_division=0)),
            recall=float(skm.recall_score(y_true, predicted, zero_division=0)),
        )
    else:
        labels = list(range(n_classes or int(max(y_true.max(), predicted.max()) + 1)))
        result["confusion_matrix"] = skm.confusion_matrix(y_true, predicted, labels=labels).tolist()
    return result


def baselines(task, split, n_classes=None):
    """Scores two baselines on the test split, for scale.

    Returns:
        `{"majority_class" | "training_mean": {...}, "logistic_regression" |
        "linear_regression": {...}}`, each with the headline metric(s).
    """
    from sklearn.linear_model import LinearRegression, LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if task == "regression":
        mean = np.full(len(split.y_test), float(np.mean(split.y_train)))
        linear = make_pipeline(StandardScaler(), LinearRegression()).fit(split.x_train, split.y_train)
        return {
            "training_mean": metrics(task, split.y_test, mean),
            "linear_regression": metrics(task, split.y_test, linear.predict(split.x_test)),
        }
    counts = np.bincount(split.y_train, minlength=n_classes or 0)
    majority = np.zeros((len(split.y_test), len(counts)))
    majority[:, counts.argmax()] = 1.0
    logistic = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    logistic.fit(split.x_train, split.y_train)
    proba = logistic.predict_proba(split.x_test)
    if task == "binary":
        majority, proba = majority[:, 1:], proba[:, 1:]
    keep = ("accuracy",) if task == "multiclass" else ("accuracy", "auc")
    return {
        name: {k: v for k, v in metrics(task, split.y_test, out, n_classes).items() if k in keep}
        for name, out in (("majority_class", majority), ("logistic_regression", proba))
    }
