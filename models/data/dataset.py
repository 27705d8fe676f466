"""The types of the data layer: a table ready for training, its columns, its split.

`Dataset` holds raw feature values as one float32 array (categorical columns
as codes, see `Column`), the target, and what an export needs to describe them;
`Split` is its train / validation / test parts; `DataError` is data that cannot
be used as asked.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

TASKS = ("binary", "multiclass", "regression")


class DataError(ValueError):
    """Data that cannot be used as asked; the message names the cause and the fix."""


KINDS = ("numeric", "categorical")
"""What a feature column holds: numbers (NaN = missing) or categories (text)."""


@dataclass(frozen=True)
class Column:
    """One feature column of a table: its name, kind and (categorical) categories.

    A categorical column is stored in `Dataset.x` as the index of each cell's
    category in `categories` (a float, NaN for a missing cell), so every
    table, text or not, is one float32 array that splits and hashes alike.

    Args:
        name: the column's name in the file.
        kind: `"numeric"` or `"categorical"`.
        categories: the distinct values of a categorical column, in the order
            its codes refer to; `None` for a numeric column.
    """

    name: str
    kind: str = "numeric"
    categories: tuple | None = None


@dataclass(frozen=True)
class Dataset:
    """A table ready for training.

    Args:
        name: a short name, e.g. `"breast_cancer"` or the CSV's file name.
        x: float32 array `[rows, features]` of raw values.
        y: int64 class indices (classification) or float32 values (regression).
        feature_names: column names of `x`, in order.
        target: what `y` is, in words or the CSV column name.
        task: `"binary"`, `"multiclass"` or `"regression"`.
        class_names: the label of each class index (classification), else `None`.
        description: where the data come from, one line.
        sha256: a hash of the data, recorded in exports.
        columns: a `Column` per feature for a CSV table (numeric values with
            NaN for a missing cell, categorical codes); `None` for the bundled
            sets, which are numeric and complete.
    """

    name: str
    x: np.ndarray
    y: np.ndarray
    feature_names: list
    target: str
    task: str
    class_names: list | None = None
    description: str = ""
    sha256: str = ""
    columns: tuple | None = None

    @property
    def n_classes(self):
        """The number of classes (classification), else `None`."""
        return None if self.class_names is None else len(self.class_names)


@dataclass(frozen=True)
class Split:
    """Train, validation and test parts of one `Dataset`."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def fingerprint(*arrays):
    """The sha256 of the arrays' bytes, in order."""
    digest = hashlib.sha256()
    for array in arrays:
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()
