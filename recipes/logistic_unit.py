"""One sigmoid neuron trained on real data behaves like logistic regression.

Notes: "Neural networks - fundamentals" ("this unit neuron architecture will
give similar results to Logistic Regression as the working principle is
same") and "Logistic regression" (a linear function passed through σ).

A single neuron with a sigmoid computes σ(w·x + b), which is exactly the model
of logistic regression; trained with binary cross-entropy (log loss) it fits
the same kind of boundary, a hyperplane. The only differences are in the
fitting: Keras takes mini-batch Adam steps on the unpenalized log loss, while
scikit-learn's `LogisticRegression` solves for the minimum of the log loss
plus an L2 penalty (C = 1). This recipe trains the neuron (a `Normalization`
layer, then `Dense(1, activation="sigmoid")`, no hidden layer) on the
Wisconsin breast-cancer data and fits `StandardScaler` + `LogisticRegression`
on the same training rows, then scores both on the same held-out test rows.
The model is exported like any training recipe's.

What to look at: the comparison table. The two test accuracies land within a
few points of each other (the tests hold them within 0.035), `agreement` (the
share of test rows where both predict the same class) is near 1, and the
cosine between the neuron's weights and the regression's coefficients (both
act on standardized features) is high: the same model, found two ways. The
report's `details` hold `neuron_accuracy`, `logistic_regression_accuracy` and
`agreement`.
"""

from recipes.core.options import TRAINING
from recipes.core.registry import register

OPTIONS = tuple(o for o in TRAINING if o not in ("hidden", "l2", "dropout"))
"""The training options, less those of hidden layers (it has none)."""


@register(
    "logistic-unit",
    scenario="A single neuron is logistic regression",
    data="breast cancer (scikit-learn)",
    summary="One sigmoid neuron, no hidden layer, against scikit-learn's LogisticRegression.",
    options=OPTIONS,
    defaults={"epochs": 100, "batch_size": 32, "learning_rate": 0.01},
)
def logistic_unit(run):
    import dataclasses

    import keras
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from models.training import evaluation, loop
    from recipes.core.report import Table

    # One neuron and no hidden layer: the exported metadata records `hidden` as [].
    config = run.config = dataclasses.replace(run.config, hidden=())

    # Data: the breast-cancer table (or your --data CSV with a two-class target).
    data = run.load_data("breast_cancer", task="binary")

    # Model: the library's Normalization front-end, then one neuron, σ(w·x + b).
    with run.scope():
        network = keras.Sequential(
            [keras.layers.Dense(1, activation="sigmoid", name="neuron")], name="logistic_unit")
        model = data.with_preprocessing(network)
        model.compile(optimizer=run.optimizer(), loss="binary_crossentropy",
                      metrics=["accuracy"])
    callbacks = []
    if config.patience:
        callbacks.append(keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=config.patience, restore_best_weights=True))
    history = run.fit(model, data.x_train, data.y_train, epochs=config.epochs,
                      batch_size=config.batch_size, validation_data=(data.x_val, data.y_val),
                      callbacks=callbacks)

    # Logistic regression on the same training rows, both scored on the same test rows.
    split = data.encoded_split
    logistic = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    logistic.fit(split.x_train, split.y_train)
    logistic_proba = logistic.predict_proba(split.x_test)[:, 1]
    logistic_scores = evaluation.metrics("binary", split.y_test, logistic_proba[:, None])

    neuron_scores = run.evaluate(model, data)
    neuron_proba = loop.predict(model, split.x_test).reshape(-1)  # as run.evaluate scores it
    neuron_class = evaluation.classes_from_probabilities("binary", neuron_proba)
    neuron_accuracy = neuron_scores["accuracy"]
    logistic_accuracy = logistic_scores["accuracy"]
    agreement = float(np.mean(neuron_class == (logistic_proba > 0.5)))
    kernel, bias = (np.asarray(w).reshape(-1) for w in network.get_layer("neuron").get_weights())
    coefficients = logistic[-1].coef_.reshape(-1)
    cosine = float(kernel @ coefficients / (np.linalg.norm(kernel) * np.linalg.norm(coefficients)))
    probability_gap = float(np.mean(np.abs(neuron_proba - logistic_proba)))

    comparison = Table(
        "One sigmoid neuron against logistic regression (same split, same test rows)",
        ["", "neuron (Keras)", "LogisticRegression"],
        [["test accuracy", neuron_accuracy, logistic_accuracy],
         ["test AUC", neuron_scores["auc"], logistic_scores["auc"]],
         ["bias / intercept", float(bias[0]), float(logistic[-1].intercept_[0])],
         ["weight norm (standardized features)", float(np.linalg.norm(kernel)),
          float(np.linalg.norm(coefficients))]],
    )
    same = Table(
        "How alike they are",
        ["measure", "value"],
        [["accuracy gap", abs(neuron_accuracy - logistic_accuracy)],
         ["agreement (same class on test rows)", agreement],
         ["mean |P_neuron - P_logistic| on test rows", probability_gap],
         ["cosine(neuron weights, LR coefficients)", cosine]],
    )
    return run.finish(
        model, data, history,
        details={
            "neuron_accuracy": neuron_accuracy,
            "logistic_regression_accuracy": logistic_accuracy,
            "agreement": agreement,
            "accuracy_gap": abs(neuron_accuracy - logistic_accuracy),
            "probability_gap": probability_gap,
            "weight_cosine": cosine,
            "logistic_regression": {"model": "StandardScaler + LogisticRegression(C=1.0)",
                                    "auc": logistic_scores["auc"]},
        },
        tables=[comparison, same],
        messages=["The neuron: Normalization -> Dense(1, sigmoid), trained on binary "
                  "cross-entropy; logistic regression: StandardScaler -> LogisticRegression."],
    )
