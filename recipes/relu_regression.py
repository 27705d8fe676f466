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

The defaults regularize (L2 0.01 on the hidden kernels, early stopping with
patience 10): 442 rows are few, and an unregularized MLP overfits them.

What to look at: R² (share of the variance explained) and MAE on the test
split against the training mean (R² = 0) and linear regression. On this small,
noisy data set the MLP lands near the linear fit (over seeds 0-3 and 42, test
R² 0.35-0.51 against linear regression's 0.34-0.45), which is itself a lesson:
a neural network earns its keep on non-linear structure, not on every table.
"""

from recipes.options import TRAINING
from recipes.registry import register


@register(
    "relu-regression",
    scenario="Continuous positive target: ReLU output, mean squared error",
    data="diabetes progression (scikit-learn)",
    summary="Regression MLP whose ReLU output can only predict values >= 0.",
    options=TRAINING,
    defaults={"epochs": 100, "batch_size": 32, "hidden": (16, 8), "learning_rate": 0.01,
              "l2": 0.01, "patience": 10},
)
def run(config):
    from recipes import _supervised

    return _supervised.run(config, head="relu", dataset="diabetes")
