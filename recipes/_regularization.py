"""What the regularization recipes measure: accuracies, hidden kernels, L2 penalties.

Shared by `l2-penalty`, `dropout`, `early-stopping` and `regularization`.
Accuracies are those of the model as it predicts, in inference mode (dropout
off), which is not the training accuracy Keras logs while dropout is on.
"""

from __future__ import annotations

import keras
import numpy as np

from models import evaluation, training
from recipes.errors import UsageError


def require_positive(config, name, flag):
    """Refuses a recipe run whose one regularizer is switched off (`--l2 0`, `--dropout 0`)."""
    value = getattr(config, name)
    if not value > 0:
        raise UsageError(
            f"`{flag}` must be > 0 for `{config.recipe}`, which compares the model with this "
            f"regularizer against the same model without it. Received: {flag}={value:g}. "
            f"See `python -m recipes.run {config.recipe} --help`."
        )


def accuracy(model, task, x, y):
    """The share of rows of `x` whose predicted class is `y`, in inference mode."""
    outputs = training.predict(model, x)
    return float(np.mean(evaluation.classes_from_probabilities(task, outputs) == np.asarray(y)))


def scores(model, task, split):
    """Train, validation and test accuracy of `model`, and the gap = train - validation."""
    train = accuracy(model, task, split.x_train, split.y_train)
    val = accuracy(model, task, split.x_val, split.y_val)
    test = accuracy(model, task, split.x_test, split.y_test)
    return {"train_accuracy": train, "val_accuracy": val, "test_accuracy": test,
            "gap": train - val}


def hidden_layers(model):
    """The model's hidden `Dense` layers (`hidden_1`, `hidden_2`, ...), in order."""
    return [layer for layer in model.layers
            if isinstance(layer, keras.layers.Dense) and layer.name.startswith("hidden_")]


def squared_weights(model):
    """`{layer name: Σw²}` of every `Dense` kernel (hidden layers and the output), float64."""
    return {layer.name: float(np.sum(np.square(np.asarray(layer.kernel, dtype=np.float64))))
            for layer in model.layers if isinstance(layer, keras.layers.Dense)}


def l2_by_hand(model):
    """λ·Σw² summed over the kernels that carry an L2 regularizer, from the weights alone."""
    total = 0.0
    for layer in model.layers:
        regularizer = getattr(layer, "kernel_regularizer", None)
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
