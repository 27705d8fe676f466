"""What the regularization recipes measure: accuracies, hidden kernels, L2 penalties.

Shared by `l2-penalty`, `dropout`, `early-stopping` and `regularization`; the
models themselves are built, compiled and trained in those recipes. The
helpers look inside nested models too, so they work on a recipe's model
(the `Normalization` front-end, then its `keras.Sequential` network).
Accuracies are those of the model as it predicts, in inference mode (dropout
off), which is not the training accuracy Keras logs while dropout is on.

Example:

>>> import keras
>>> network = keras.Sequential([
...     keras.Input((3,)),
...     keras.layers.Dense(4, name="hidden_1", kernel_regularizer=keras.regularizers.L2(0.1)),
...     keras.layers.Dense(1, name="output")])
>>> [layer.name for layer in hidden_layers(network)]
['hidden_1']
>>> abs(keras_penalty(network) - l2_by_hand(network)) < 1e-6
True
"""

from __future__ import annotations

import keras
import numpy as np

from models.lessons.activations import dense_layers
from models.training import evaluation, loop


def accuracy(model, task, x, y):
    """The share of rows of `x` whose predicted class is `y`, in inference mode."""
    outputs = loop.predict(model, x)
    return float(np.mean(evaluation.classes_from_probabilities(task, outputs) == np.asarray(y)))


def scores(model, task, split):
    """Train, validation and test accuracy of `model`, and the gap = train - validation.

    Args:
        model: a classifier taking the raw features.
        task: `"binary"` or `"multiclass"`.
        split: the `models.data.Split` (raw features, class indices).
    """
    train = accuracy(model, task, split.x_train, split.y_train)
    val = accuracy(model, task, split.x_val, split.y_val)
    test = accuracy(model, task, split.x_test, split.y_test)
    return {"train_accuracy": train, "val_accuracy": val, "test_accuracy": test,
            "gap": train - val}


def hidden_layers(model):
    """The model's hidden `Dense` layers (`hidden_1`, `hidden_2`, ...), in order."""
    return [layer for layer in dense_layers(model) if layer.name.startswith("hidden_")]


def squared_weights(model):
    """`{layer name: Σw²}` of every `Dense` kernel (hidden layers and the output), float64."""
    return {layer.name: float(np.sum(np.square(np.asarray(layer.kernel, dtype=np.float64))))
            for layer in dense_layers(model)}


def l2_by_hand(model):
    """λ·Σw² summed over the kernels that carry an L2 regularizer, from the weights alone."""
    total = 0.0
    for layer in dense_layers(model):
        regularizer = layer.kernel_regularizer
        if regularizer is None:
            continue
        kernel = np.asarray(layer.kernel, dtype=np.float64)
        total += float(regularizer.l2) * float(np.sum(kernel ** 2))
    return total


def keras_penalty(model):
    """The regularization term Keras adds to the loss: the sum of `model.losses`."""
    return float(sum(float(loss) for loss in model.losses))


class SquaredWeightsLog(keras.callbacks.Callback):
    """Records Σw² over the hidden kernels before training and at each epoch end.

    `values[0]` is the starting Σw², `values[k]` the one after epoch k.
    """

    def __init__(self):
        super().__init__()
        self.values = []

    def _record(self):
        self.values.append(sum(float(np.sum(np.square(np.asarray(layer.kernel, np.float64))))
                               for layer in hidden_layers(self.model)))

    def on_train_begin(self, logs=None):
        self.values = []
        self._record()

    def on_epoch_end(self, epoch, logs=None):
        self._record()
