"""What a recipe trains on: a seeded split, the target in training units, a front-end.

`prepare(dataset, seed)` cuts the `Dataset` into train / validation / test
parts and returns a `PreparedData`:

- `x_train`, `x_val`, `x_test`: raw feature values (scaling lives in the model);
- `y_train`, `y_val`, `y_test`: the target in *training units*: class indices
  for classification; for regression the target divided by its training
  scale (and, for a target of both signs, minus its training mean), so the
  network learns a target of about unit size and every optimizer's step size
  stays sensible;
- `with_preprocessing(network)`: the Keras model to compile and train, raw
  features in: a `Normalization` layer adapted on the training rows, then the
  recipe's network;
- `for_export(model)`: the model an app gets: raw values in (NaN, or for a
  text column `""`, for a missing cell), the trained model, and for
  regression a `Rescaling` layer back to the target's own units.

A table with a categorical column or a missing cell has an `encoding`
(`models.data.encoding`): then `x_train`, `x_val` and `x_test` are the encoded
matrices the network trains on (standardized, imputed, one-hot), the
front-end is the encoded input itself, and `for_export` puts the `Encoding`'s
Keras layers in front, so the export takes one raw input per column. A
complete numeric table keeps the `Normalization` front-end; its export
imputes a missing value (NaN) with the training mean.

Example:

>>> import keras
>>> from models import data
>>> from models.data.prepared import prepare
>>> iris = prepare(data.load("iris"), seed=0)
>>> model = iris.with_preprocessing(keras.Sequential([keras.layers.Dense(3, activation="softmax")]))
>>> [layer.__class__.__name__ for layer in model.layers]
['InputLayer', 'Normalization', 'Sequential']
>>> model(iris.x_test[:2]).shape
TensorShape([2, 3])
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from models.data.bundled import Dataset, Split, split
from models.data.encoding import Encoding
from models.export.layout import INPUT

UNSEEN_CATEGORY = "(never seen in training)"
"""A category the export check sends, to prove an unknown value is not an error."""

SCALINGS = ("centre", "scale")
"""How a regression target is brought to unit size: `centre` (minus the mean,
over the standard deviation: a target of both signs, a linear output) or
`scale` (over the root mean square only: a positive target keeps its sign,
for a ReLU output)."""


@dataclass(frozen=True)
class PreparedData:
    """A data set split for training, with its front-end and target scale.

    Args:
        dataset: the `Dataset` (raw values, names, task).
        split: its train / validation / test `Split`, raw targets.
        target_scale: `(offset, scale)` of a regression target (raw =
            offset + scale · training units), else `None`.
        encoding: the table's `models.data.encoding.Encoding` when it has a
            categorical column or a missing cell, else `None`.
    """

    dataset: Dataset
    split: Split
    target_scale: tuple | None = None
    encoding: Encoding | None = None

    # What the data are ------------------------------------------------------------

    @property
    def task(self):
        """`"binary"`, `"multiclass"` or `"regression"`."""
        return self.dataset.task

    @property
    def n_features(self):
        """The width of what the network takes (the encoded matrix, for an encoded table)."""
        return int(self.x_train.shape[1])

    @property
    def n_classes(self):
        """The number of classes (classification), else `None`."""
        return self.dataset.n_classes

    @property
    def class_names(self):
        return self.dataset.class_names

    @property
    def feature_names(self):
        return self.dataset.feature_names

    # The rows ---------------------------------------------------------------------

    @functools.cached_property
    def x_train(self):
        return self._encoded(self.split.x_train)

    @functools.cached_property
    def x_val(self):
        return self._encoded(self.split.x_val)

    @functools.cached_property
    def x_test(self):
        return self._encoded(self.split.x_test)

    @property
    def encoded_split(self):
        """The split with the features the network takes (encoded, for an encoded table), raw targets.

        What a scikit-learn baseline trains on: for an encoded table the same
        imputation, indicators and one-hot columns as the network.
        """
        if self.encoding is None:
            return self.split
        split = self.split
        return Split(self.x_train, split.y_train, self.x_val, split.y_val, self.x_test, split.y_test)

    def _encoded(self, x):
        return x if self.encoding is None else self.encoding.transform(x)

    def export_feed(self, x):
        """Rows of the split (`split.x_test`, ...) as the exported model's raw inputs.

        Returns:
            The float32 matrix (NaN for missing), or for a table with a
            categorical column `{input_name: array}` (see
            `models.data.encoding.Encoding.feed`).
        """
        return x if self.encoding is None else self.encoding.feed(x)

    def check_feed(self, rows=16):
        """Raw inputs to check an export with: test rows, plus one all-missing row and,
        for a categorical table, one of categories never seen in training."""
        x = np.asarray(self.split.x_test[:rows], dtype=np.float32)
        x = np.concatenate([x, np.full((1, x.shape[1]), np.nan, np.float32)])
        feed = self.export_feed(x)
        if isinstance(feed, dict):
            unseen = {k: np.array([UNSEEN_CATEGORY], dtype=object) if v.dtype == object
                      else v[:1] for k, v in feed.items()}
            feed = {k: np.concatenate([v, unseen[k]]) for k, v in feed.items()}
        return feed

    def describe_features(self):
        """`metadata.json`'s `features`: per column its input, kind and what was learned."""
        if self.encoding is not None:
            return self.encoding.describe()
        x = np.asarray(self.split.x_train, dtype=np.float64)
        return [{"name": name, "input": INPUT, "kind": "numeric", "mean": float(x[:, j].mean()),
                 "std": float(x[:, j].std()) or 1.0, "had_gaps": False}
                for j, name in enumerate(self.feature_names)]

    @property
    def input_layout(self):
        """`"matrix"` (one `features` input) or `"columns"` (one input per column)."""
        return "matrix" if self.encoding is None else self.encoding.layout

    @property
    def y_train(self):
        return self.to_training_units(self.split.y_train)

    @property
    def y_val(self):
        return self.to_training_units(self.split.y_val)

    @property
    def y_test(self):
        return self.to_training_units(self.split.y_test)

    def to_training_units(self, y):
        """`y` as the network learns it: unchanged for classes, scaled for regression."""
        if self.target_scale is None:
            return y
        offset, scale = self.target_scale
        return ((np.asarray(y, dtype=np.float64) - offset) / scale).astype(np.float32)

    # The model's ends -------------------------------------------------------------

    def preprocessing(self):
        """The front-end layers: `(inputs, normalized)` symbolic tensors, raw features in.

        A `Normalization` layer holding the training rows' mean and variance.
        Keras divides by max(√variance, 1e-7): a feature constant in the
        training rows (a pixel blank in every training digit) would turn any
        other value met later into millions of standard deviations, so such a
        feature is centred and left unscaled.
        """
        import keras

        if self.encoding is not None:  # already standardized, imputed and one-hot
            inputs = keras.Input((self.n_features,), name="encoded")
            return inputs, inputs
        x_train = np.asarray(self.x_train, dtype=np.float64)
        constant = np.ptp(x_train, axis=0) == 0
        variance = np.where(constant, 1.0, x_train.var(axis=0))
        inputs = keras.Input((self.n_features,), name="features")
        normalization = keras.layers.Normalization(
            mean=x_train.mean(axis=0), variance=variance, name="normalization")
        return inputs, normalization(inputs)

    def with_preprocessing(self, network, name=None):
        """The model to compile and train: raw features → `Normalization` → `network`.

        Under a `mixed_float16` policy (`--mixed-precision` on a GPU) the
        network's output is cast back to float32, so the loss and the exported
        probabilities keep full precision.

        Args:
            network: the recipe's Keras network (e.g. a `keras.Sequential`),
                taking the normalized features.
            name: the model's name. Defaults to the network's.

        Returns:
            A functional `keras.Model`.
        """
        import keras

        inputs, normalized = self.preprocessing()
        outputs = network(normalized)
        if keras.config.dtype_policy().name == "mixed_float16":
            outputs = keras.layers.Activation("linear", dtype="float32", name="float32")(outputs)
        return keras.Model(inputs, outputs, name=name or network.name)

    def for_export(self, model):
        """The model as an app sees it: raw values in, predictions in the target's own units.

        In front of `model`: the `Encoding`'s layers (an encoded table), or a
        NaN → training-mean imputation (a complete numeric table). Behind it,
        for regression, `Rescaling(scale, offset)`.
        """
        import keras
        from keras import ops

        if self.encoding is not None:
            inputs = self.encoding.inputs()
            outputs = model(self.encoding.encoder(inputs))
        else:
            inputs = keras.Input((self.n_features,), name=INPUT)
            mean = np.asarray(self.split.x_train, dtype=np.float64).mean(axis=0).astype(np.float32)
            imputed = ops.where(ops.isnan(inputs), mean, inputs)
            outputs = model(imputed)
        if self.target_scale is not None:
            offset, scale = self.target_scale
            outputs = keras.layers.Rescaling(float(scale), offset=float(offset),
                                             name="target_scale", dtype="float32")(outputs)
        return keras.Model(inputs, outputs, name=model.name)


def prepare(dataset, seed, *, scaling="centre", val_fraction=0.2, test_fraction=0.2):
    """Splits `dataset` with `seed` and fixes a regression target's scale on the training rows.

    Args:
        dataset: a `Dataset`.
        seed: the split's random seed.
        scaling: for regression, one of `SCALINGS`. Defaults to `"centre"`.
        val_fraction: share of rows for validation. Defaults to `0.2`.
        test_fraction: share of rows for the held-out test. Defaults to `0.2`.

    Returns:
        A `PreparedData`.

    Raises:
        DataError: too few rows, or a class too small to appear in every part.
    """
    if scaling not in SCALINGS:
        raise ValueError(f"`scaling` must be one of {', '.join(SCALINGS)}. Received: scaling={scaling!r}")
    parts = split(dataset, seed, val_fraction=val_fraction, test_fraction=test_fraction)
    encoding = None
    if dataset.columns is not None and (
        any(c.kind == "categorical" for c in dataset.columns) or np.isnan(dataset.x).any()
    ):
        encoding = Encoding.fit(parts.x_train, dataset.columns)
    target_scale = None
    if dataset.task == "regression":
        y = np.asarray(parts.y_train, dtype=np.float64)
        if scaling == "scale":
            target_scale = (0.0, float(np.sqrt(np.mean(y ** 2))) or 1.0)
        else:
            target_scale = (float(y.mean()), float(y.std()) or 1.0)
    return PreparedData(dataset, parts, target_scale, encoding)
