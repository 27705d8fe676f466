"""Text categories and missing values, turned into the numbers a network takes, inside the model.

A table with a categorical column, or with a missing cell, cannot go into a
`Dense` layer as it is. `Encoding.fit(x_train, columns)` learns, on the
training rows only, what scikit-learn's `SimpleImputer(add_indicator=True)`,
`StandardScaler` and `OneHotEncoder(handle_unknown="infrequent_if_exist")`
would, and `encoder(inputs)` builds it from Keras layers, so it travels inside
the exported model and an app sends raw values:

- a numeric column: standardized with the mean and standard deviation of its
  non-missing training values; a missing value (NaN) becomes the training mean,
  0 after scaling; a column that had gaps in the training rows also gets a
  0/1 "was missing" column (`keras.ops.isnan`, `keras.ops.where`);
- a categorical column: one-hot over the categories seen in the training rows,
  most frequent first, plus one out-of-vocabulary slot first
  (`keras.layers.StringLookup(output_mode="one_hot", num_oov_indices=1)`); a
  missing cell is the empty string, its own category when the training rows
  had gaps; a category never seen in training lands in the out-of-vocabulary
  slot, not in an error.

The exported model's inputs (`inputs()`): one rank-1 input per column,
float32 for numeric, string for categorical (`layout == "columns"`), when any
column is categorical; else one float32 `features` matrix with NaN for missing
(`layout == "matrix"`). Column names become input names by `input_names`:
characters other than letters, digits and `_` become `_`, so `fare usd` is
`fare_usd` and `cabin.deck` is `cabin_deck`.

The training rows themselves are encoded once, in NumPy (`transform`), and the
recipe's network trains on that matrix with the fast loop; `encoder` computes
the same numbers in the graph (the tests check both agree).

Example:

>>> import numpy as np
>>> from models.data import Column
>>> from models.data.encoding import Encoding
>>> columns = (Column("age"), Column("sex", "categorical", ("male", "female")))
>>> x = np.array([[20, 0], [40, 1], [np.nan, 1]], dtype=np.float32)
>>> encoding = Encoding.fit(x, columns)
>>> encoding.transform(x).round(3).tolist()     # age, age missing, OOV, female, male
[[-1.0, 0.0, 0.0, 0.0, 1.0], [1.0, 0.0, 0.0, 1.0, 0.0], [0.0, 1.0, 0.0, 1.0, 0.0]]
"""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass

import numpy as np

from models.export.layout import INPUT

MISSING_CATEGORY = ""
"""How a missing categorical cell reaches the model: the empty string."""


@dataclass(frozen=True)
class Feature:
    """What the encoder learned about one column on the training rows.

    Args:
        name: the column's name in the file.
        input: its input name in the exported signature (`layout == "columns"`).
        kind: `"numeric"` or `"categorical"`.
        mean: the mean of the non-missing training values (numeric).
        std: their standard deviation, 1 for a constant column (numeric).
        had_gaps: whether the training rows had a missing value, so the
            encoding has a "was missing" column for it (numeric).
        vocabulary: the training rows' categories, most frequent first
            (categorical); `""` among them when missing cells were seen.
    """

    name: str
    input: str
    kind: str
    mean: float | None = None
    std: float | None = None
    had_gaps: bool = False
    vocabulary: tuple | None = None

    @property
    def width(self):
        """How many columns of the encoded matrix this feature takes."""
        if self.kind == "categorical":
            return len(self.vocabulary) + 1
        return 1 + int(self.had_gaps)

    def describe(self):
        """This feature as a `metadata.json` entry."""
        entry = {"name": self.name, "input": self.input, "kind": self.kind}
        if self.kind == "categorical":
            entry["vocabulary"] = list(self.vocabulary)
        else:
            entry.update(mean=self.mean, std=self.std, had_gaps=self.had_gaps)
        return entry


def input_names(names):
    """Signature input names for column names: `[A-Za-z0-9_]` only, unique, starting with a
    letter, and not a Python keyword (a signature's inputs are its function's arguments).

    >>> input_names(["fare usd", "cabin.deck", "9lives", "a b", "a_b", "class"])
    ['fare_usd', 'cabin_deck', 'c9lives', 'a_b', 'a_b_2', 'class_']
    """
    out, taken = [], set()
    for name in names:
        clean = re.sub(r"[^A-Za-z0-9_]", "_", name).strip("_") or "column"
        if not clean[0].isalpha():
            clean = f"c{clean}"
        if keyword.iskeyword(clean) or keyword.issoftkeyword(clean):
            clean = f"{clean}_"
        candidate, n = clean, 1
        while candidate in taken or candidate == INPUT:
            n += 1
            candidate = f"{clean}_{n}"
        taken.add(candidate)
        out.append(candidate)
    return out


@dataclass(frozen=True)
class Encoding:
    """The learned preprocessing of a table: one `Feature` per column, and the input layout.

    Made by `fit`; see the module docstring. `columns` are the table's
    `models.data.Column`s, which map the codes of `Dataset.x` to categories.
    """

    features: tuple
    layout: str
    columns: tuple

    @classmethod
    def fit(cls, x_train, columns):
        """Learns each column's statistics or vocabulary from the training rows.

        Args:
            x_train: float32 `[rows, columns]` as in `models.data.Dataset.x`
                (NaN for missing; categorical columns as codes).
            columns: the `models.data.Column` of each column.

        Returns:
            An `Encoding`.
        """
        x_train = np.asarray(x_train, dtype=np.float64)
        names = input_names([c.name for c in columns])
        features = []
        for j, (column, name) in enumerate(zip(columns, names)):
            values = x_train[:, j]
            present = values[~np.isnan(values)]
            if column.kind == "categorical":
                tally = np.bincount(present.astype(np.int64), minlength=len(column.categories))
                counts = {column.categories[i]: int(tally[i]) for i in np.flatnonzero(tally)}
                if len(present) < len(values):
                    counts[MISSING_CATEGORY] = len(values) - len(present)
                vocabulary = tuple(sorted(counts, key=lambda k: (-counts[k], k)))
                features.append(Feature(column.name, name, "categorical", vocabulary=vocabulary))
                continue
            if len(present):
                mean, std = float(present.mean()), float(present.std())
            else:  # a column with no value in the training rows: imputed, and its gaps flagged
                mean, std = 0.0, 1.0
            features.append(Feature(column.name, name, "numeric", mean=mean, std=std or 1.0,
                                    had_gaps=len(present) < len(values)))
        layout = "columns" if any(f.kind == "categorical" for f in features) else "matrix"
        return cls(tuple(features), layout, tuple(columns))

    @property
    def width(self):
        """The number of columns of the encoded matrix (the network's input)."""
        return sum(f.width for f in self.features)

    def describe(self):
        """The per-feature entries of `metadata.json`'s `features`."""
        return [f.describe() for f in self.features]

    # NumPy: the training rows ------------------------------------------------------

    def transform(self, x):
        """Encodes code rows (`models.data.Dataset.x`) as the float32 matrix the network trains on."""
        x = np.asarray(x, dtype=np.float32)
        parts = []
        for j, (feature, column) in enumerate(zip(self.features, self.columns)):
            values = x[:, j]
            missing = np.isnan(values)
            if feature.kind == "numeric":
                scaled = (values - np.float32(feature.mean)) / np.float32(feature.std)
                parts.append(np.where(missing, np.float32(0), scaled)[:, None])
                if feature.had_gaps:
                    parts.append(missing.astype(np.float32)[:, None])
                continue
            slot = {token: i + 1 for i, token in enumerate(feature.vocabulary)}
            code_slot = np.array([slot.get(c, 0) for c in column.categories] or [0], np.int64)
            index = np.where(missing, slot.get(MISSING_CATEGORY, 0),
                             code_slot[np.where(missing, 0, values).astype(np.int64)])
            parts.append(np.eye(feature.width, dtype=np.float32)[index])
        return np.concatenate(parts, axis=1)

    def feed(self, x):
        """Code rows as the exported model's raw inputs (what an app sends).

        Returns:
            `layout == "matrix"`: the float32 matrix itself (NaN for missing);
            `"columns"`: `{input: array}`, float32 for numeric, an object array
            of `str` for categorical (`""` for missing).
        """
        x = np.asarray(x, dtype=np.float32)
        if self.layout == "matrix":
            return x
        out = {}
        for j, (feature, column) in enumerate(zip(self.features, self.columns)):
            values = x[:, j]
            if feature.kind == "numeric":
                out[feature.input] = np.ascontiguousarray(values)
                continue
            names = np.array([*column.categories, MISSING_CATEGORY], dtype=object)
            out[feature.input] = names[np.where(np.isnan(values), len(column.categories),
                                                np.nan_to_num(values)).astype(np.int64)]
        return out

    # Keras: the exported model -----------------------------------------------------

    def inputs(self):
        """The exported model's `keras.Input`s: a dict per column, or the `features` matrix."""
        import keras

        if self.layout == "matrix":
            return keras.Input((len(self.features),), name=INPUT)
        return {
            f.input: keras.Input((), dtype="float32" if f.kind == "numeric" else "string",
                                 name=f.input)
            for f in self.features
        }

    def encoder(self, inputs):
        """The encoded matrix as a symbolic Keras tensor of `inputs` (from `inputs()`)."""
        import keras
        from keras import ops

        parts = []
        if self.layout == "matrix":
            mean = np.array([f.mean for f in self.features], np.float32)
            std = np.array([f.std for f in self.features], np.float32)
            missing = ops.isnan(inputs)
            scaled = ops.where(missing, ops.zeros_like(inputs), (inputs - mean) / std)
            # column order as `transform`'s: each value, then its indicator
            for j, feature in enumerate(self.features):
                parts.append(scaled[:, j:j + 1])
                if feature.had_gaps:
                    parts.append(ops.cast(missing[:, j:j + 1], "float32"))
            return keras.layers.Concatenate(name="encoded")(parts)
        for feature in self.features:
            value = inputs[feature.input]
            if feature.kind == "categorical":
                lookup = keras.layers.StringLookup(
                    vocabulary=list(feature.vocabulary), num_oov_indices=1, output_mode="one_hot",
                    name=f"{feature.input}_one_hot")
                parts.append(lookup(value))
                continue
            value = ops.expand_dims(value, -1)
            missing = ops.isnan(value)
            parts.append(ops.where(missing, ops.zeros_like(value),
                                   (value - np.float32(feature.mean)) / np.float32(feature.std)))
            if feature.had_gaps:
                parts.append(ops.cast(missing, "float32"))
        return keras.layers.Concatenate(name="encoded")(parts)
