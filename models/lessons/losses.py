"""The notes' loss functions by hand in NumPy, to set beside Keras's loss objects.

Used by `loss-functions`. Each function takes targets and predictions as
arrays and returns the mean over rows, in float64, the formula written out:

| loss | formula (mean over rows) | Keras |
|---|---|---|
| binary cross-entropy | −[y·ln p + (1 − y)·ln(1 − p)] | `keras.losses.BinaryCrossentropy()` |
| categorical cross-entropy | −Σ_k y_k·ln p_k (one-hot y) | `keras.losses.CategoricalCrossentropy()` |
| sparse categorical cross-entropy | −ln p_y (integer y) | `keras.losses.SparseCategoricalCrossentropy()` |
| mean squared error | (ŷ − y)² | `keras.losses.MeanSquaredError()` |
| mean absolute error | \\|ŷ − y\\| | `keras.losses.MeanAbsoluteError()` |
| Huber (δ) | ½e² for \\|e\\| ≤ δ, else δ·(\\|e\\| − ½δ), e = ŷ − y | `keras.losses.Huber(delta=δ)` |

Keras clips probabilities to [ε, 1 − ε] (ε = 1e-7) before the logarithm and
divides a categorical prediction by its row sum; the examples here are inside
those bounds, so the formulas need neither. Keras's mean squared error has no
½ (ERRATA #10).

Example:

>>> round(binary_crossentropy([1, 0], [0.9, 0.2]), 6)
0.164252
>>> huber([0.0, 0.0], [0.5, 3.0], delta=1.0)
1.3125
"""

from __future__ import annotations

import numpy as np


def _arrays(y_true, y_pred):
    return np.asarray(y_true, dtype=np.float64), np.asarray(y_pred, dtype=np.float64)


def binary_crossentropy(y_true, p):
    """−mean[y·ln p + (1 − y)·ln(1 − p)]: `p` is the probability of class 1."""
    y, p = _arrays(y_true, p)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def categorical_crossentropy(y_onehot, p):
    """−mean over rows of Σ_k y_k·ln p_k: one-hot targets, rows of probabilities."""
    y, p = _arrays(y_onehot, p)
    return float(-np.mean(np.sum(y * np.log(p), axis=-1)))


def sparse_categorical_crossentropy(labels, p):
    """−mean ln p[row, label]: integer class labels, rows of probabilities."""
    p = np.asarray(p, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    return float(-np.mean(np.log(p[np.arange(len(labels)), labels])))


def mean_squared_error(y_true, y_pred):
    """mean (ŷ − y)²."""
    y, y_hat = _arrays(y_true, y_pred)
    return float(np.mean((y_hat - y) ** 2))


def mean_absolute_error(y_true, y_pred):
    """mean |ŷ − y|."""
    y, y_hat = _arrays(y_true, y_pred)
    return float(np.mean(np.abs(y_hat - y)))


def huber(y_true, y_pred, delta=1.0):
    """mean of ½e² where |e| ≤ δ, δ·(|e| − ½δ) beyond: quadratic near 0, linear in the tails."""
    y, y_hat = _arrays(y_true, y_pred)
    error = np.abs(y_hat - y)
    return float(np.mean(np.where(error <= delta, 0.5 * error ** 2,
                                  delta * (error - 0.5 * delta))))
