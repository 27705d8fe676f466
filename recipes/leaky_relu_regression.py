"""Regression of a target with both signs: Leaky ReLU hidden units, a linear output.

Notes: "Leaky ReLU activation function" and the summarization table
(continuous, both +ve and -ve numbers -> Leaky ReLU); NOTES-ERRATA #7.

A target that can be negative cannot come out of a ReLU output, which clips
everything below 0. The notes answer with Leaky ReLU, max(αz, z): for z < 0
it passes αz instead of 0, so the unit keeps a gradient there and never "dies".
In Keras the usual place for it is the hidden layers, with a linear output that
can reach any value. α is a small positive constant, 0 < α < 1 (the notes say
"α less than 0", a slip, NOTES-ERRATA #7); Keras's `leaky_relu` uses 0.2.

The data: scikit-learn ships no regression set whose raw target has both signs,
so this recipe uses the diabetes data with the progression score centred on
the cohort mean (152.13): the target reads "progression above (+) or below (-)
the average patient's", and about half of the values are negative. Same
patients and features as `relu-regression`, so the two recipes compare
directly; a ReLU output could not produce the negative half.

What to look at: R² and MAE against the training mean and linear regression,
and `details.negative_share`, the share of test targets below zero.
"""

from recipes.options import TRAINING
from recipes.registry import register


@register(
    "leaky-relu-regression",
    scenario="Continuous target of both signs: Leaky ReLU hidden units, linear output",
    data="diabetes progression, centred (scikit-learn)",
    summary="Regression MLP with Leaky ReLU hidden units for a target that goes negative.",
    options=TRAINING,
    defaults={"epochs": 100, "batch_size": 32, "hidden": (16, 8), "learning_rate": 0.01,
              "l2": 0.01, "patience": 10},
)
def run(config):
    import numpy as np

    from recipes import _supervised

    trained = _supervised.train(config, head="linear", dataset="diabetes_centered",
                                activation="leaky_relu")
    negative = float(np.mean(trained.split.y_test < 0))
    return _supervised.finish(
        trained, details={"negative_share": negative},
        messages=[f"Share of test targets below zero: {negative:.2f}"],
    )
