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
- `for_export(model)`: the model an app gets: for regression the trained
  model followed by a `Rescaling` layer back to the target's own units; for
  classification the model itself.

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

from dataclasses import dataclass

import numpy as np

from models.data.bundled import Dataset, Split, split

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
    """

    dataset: Dataset
    split: Split
    target_scale: tuple | None = None

    # What the data are ------------------------------------------------------------

    @property
    def task(self):
        """`"binary"`, `"multiclass"` or `"regression"`."""
        return self.dataset.task

    @property
    def n_features(self):
        return int(self.dataset.x.shape[1])

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

    @property
    def x_train(self):
        return self.split.x_train

    @property
    def x_val(self):
        return self.split.x_val

    @property
    def x_test(self):
        return self.split.x_test

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
        """The model as an app sees it: predictions in the target's own units.

        Regression: `model` followed by `Rescaling(scale, offset)`; a
        classification model is returned as it is.
        """
        if self.target_scale is None:
            return model
        import keras

        offset, scale = self.target_scale
        outputs = keras.layers.Rescaling(float(scale), offset=float(offset), name="target_scale",
                                         dtype="float32")(model.outputs[0])
        return keras.Model(model.input, outputs, name=model.name)


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
    target_scale = None
    if dataset.task == "regression":
        y = np.asarray(parts.y_train, dtype=np.float64)
        if scaling == "scale":
            target_scale = (0.0, float(np.sqrt(np.mean(y ** 2))) or 1.0)
        else:
            target_scale = (float(y.mean()), float(y.std()) or 1.0)
    return PreparedData(dataset, parts, target_scale)
