"""Regression of a positive target: a ReLU output and mean squared error.

Notes: "Activation functions - summarization table" (continuous, finite
positive numbers -> ReLU) and "Loss functions"; NOTES-ERRATA #8.

For a continuous target that is never negative, the notes put a ReLU on the
output: max(0, z) passes any positive value and clips negatives to 0. The loss
is the mean squared error; the notes' loss table says "logloss" for continuous
targets, a slip (NOTES-ERRATA #8): log loss is cross-entropy, for classes.
This recipe predicts the diabetes data's disease progression one year after
baseline (442 patients, 10 measurements, a score from 25 to 346). The model
ends with a `Rescaling` layer holding the target's scale, so its ReLU learns a
target of about unit size while the export predicts in the score's own units.
The training loss is the MSE of that unit-size target (about 1 - R²).

What to look at: R² (share of the variance explained) and MAE on the test
split against the training mean (R² = 0) and linear regression: on this small
data set a small MLP lands near the linear fit, which is itself a lesson.
"""

from recipes.options import TRAINING
from recipes.registry import register


@register(
    "relu-regression",
    scenario="Continuous positive target: ReLU output, mean squared error",
    data="diabetes progression (scikit-learn)",
    summary="Regression MLP whose ReLU output can only predict values >= 0.",
    options=TRAINING,
    defaults={"epochs": 60, "batch_size": 32, "hidden": (16, 8), "learning_rate": 0.01,
              "patience": 15},
)
def run(config):
    from recipes import _supervised

    return _supervised.run(config, head="relu", dataset="diabetes")
