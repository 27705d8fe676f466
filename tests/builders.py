"""Small Keras models for the tests, built the way the recipes build theirs.

`mlp(prepared, output, ...)` is a recipe's network in miniature: the
preprocessing front-end of `models.data.prepared`, hidden `Dense` layers and
an output of the kind named (`sigmoid`, `softmax`, `relu`, `linear`), compiled
with the loss that output takes.
"""

import keras

from models import data
from models.data.prepared import prepare

LOSSES = {"sigmoid": "binary_crossentropy", "softmax": "sparse_categorical_crossentropy",
          "relu": "mean_squared_error", "linear": "mean_squared_error"}
TASKS = {"sigmoid": "binary", "softmax": "multiclass", "relu": "positive", "linear": "regression"}


def mlp(prepared, output, hidden=(8,), activation="relu", dropout=0.0, learning_rate=0.01,
        optimizer=None):
    """A compiled model: front-end, hidden layers (each followed by `Dropout` if asked), output."""
    layers = []
    for units in hidden:
        layers.append(keras.layers.Dense(units, activation=activation))
        if dropout:
            layers.append(keras.layers.Dropout(dropout))
    units = prepared.n_classes if output == "softmax" else 1
    layers.append(keras.layers.Dense(units, activation=output))
    model = prepared.with_preprocessing(keras.Sequential(layers))
    model.compile(optimizer=optimizer or keras.optimizers.Adam(learning_rate), loss=LOSSES[output],
                  metrics=["mae"] if LOSSES[output] == "mean_squared_error" else ["accuracy"])
    return model


def prepared(name, output, seed=0):
    """The bundled data set `name`, split with `seed`, its target scaled as `output` needs."""
    return prepare(data.load(name), seed, scaling="scale" if output == "relu" else "centre")
