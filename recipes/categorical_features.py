"""Text categories and missing values, preprocessed inside the model.

Notes: "Multi-layer perceptron" (the inputs x1 … xn are numbers) and
"Activation functions - summarization table" (several classes -> softmax).

Every formula in the notes starts from numbers: z = Σ wᵢxᵢ + b. Real tables are
not all numbers. The Palmer penguins (344 birds, 3 species) record the island
as a word and the sex as a word, and 19 cells are blank: two birds were never
measured and eleven have no sex. A network needs each of them turned into
numbers, the same way at training time and in every app that calls it:

- one-hot encoding: a text column becomes one 0/1 input per category seen in
  training (island = Biscoe -> [0, 1, 0, 0]), plus one slot for a category
  never seen (a new island is not an error, it lands there);
- imputation with an indicator: a missing number becomes the training mean
  (0 after standardizing), and a 0/1 "was missing" input lets the network
  learn whether the gap itself means something; a missing category is a
  category of its own;
- standardization of the numbers, as everywhere in this package.

Why inside the model: the vocabulary, the means and the standard deviations
are learned from the training rows and travel in the export (Keras's
`StringLookup` and `keras.ops` layers in front of the network). An app sends
`{"island": "Dream", "sex": null, "bill_length_mm": 46.1, ...}` and gets the
same answer the test split got; no app re-implements the preprocessing, so no
app can get it subtly wrong (a different category order, a different mean).
The SavedModel takes one named input per column; `metadata.json` lists each
column's kind, vocabulary and mean.

What to look at: `details.columns` (each column's kind, missing cells and
vocabulary size), and the test accuracy of the network against scikit-learn's
textbook pipeline on the same split (`SimpleImputer(add_indicator=True)` +
`OneHotEncoder` + `LogisticRegression`): the species are nearly separable by
bill and flipper measurements, so both score close to 1 (at the default seed
the network 0.986, one test bird of 69 missed, and the pipeline 1.000); the
lesson is that the network gets there from the raw table, and that its export
takes the raw table too. Train
on your own table with `--data FILE.csv --target COLUMN`; a numeric-looking
column of codes (a class 1/2/3) becomes categories with `--categorical`.
"""

from recipes.core.options import TRAINING
from recipes.core.registry import register


@register(
    "categorical-features",
    scenario="Text categories and missing values, one-hot and imputed inside the model",
    data="Palmer penguins (ships with this package)",
    summary="Penguin species from a table with words and gaps, against a scikit-learn pipeline.",
    options=TRAINING,
    defaults={"epochs": 60, "batch_size": 16, "hidden": (16,), "learning_rate": 0.01},
)
def categorical_features(run):
    import keras

    from models.lessons import categorical as lesson
    from recipes.core.report import Table

    config = run.config

    # Data: the penguins table (or your --data CSV). Its front-end, learned on the training
    # rows, one-hot encodes island and sex and imputes the gaps with a "was missing" input.
    data = run.load_data("penguins", task="multiclass")

    # Model: the encoded columns -> hidden ReLU layers -> softmax over the species.
    with run.scope():
        network = keras.Sequential(name="categorical_features")
        for units in config.hidden:
            network.add(keras.layers.Dense(
                units, activation="relu",
                kernel_regularizer=keras.regularizers.L2(config.l2) if config.l2 else None))
            if config.dropout:
                network.add(keras.layers.Dropout(config.dropout))
        network.add(keras.layers.Dense(data.n_classes, activation="softmax"))
        model = data.with_preprocessing(network)
        model.compile(optimizer=run.optimizer(), loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])

    callbacks = []
    if config.patience:
        callbacks.append(keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=config.patience, restore_best_weights=True))
    history = run.fit(model, data.x_train, data.y_train, epochs=config.epochs,
                      batch_size=config.batch_size, validation_data=(data.x_val, data.y_val),
                      callbacks=callbacks)

    # What the front-end saw, and scikit-learn's pipeline on the same rows.
    columns = lesson.columns(data.dataset, data.encoding)
    baseline = lesson.pipeline_scores(data)
    rows = [[name, c["kind"], c["missing"], c.get("vocabulary_size", "")]
            for name, c in columns.items()]
    return run.finish(
        model, data, history,
        details={"columns": columns, "encoded_width": data.n_features,
                 "scikit_learn_pipeline": {"accuracy": baseline["accuracy"]}},
        tables=[Table("Columns (vocabulary: categories seen in the training rows)",
                      ["column", "kind", "missing cells", "vocabulary"], rows),
                Table("scikit-learn's pipeline on the same split (test)", ["model", "accuracy"],
                      [["imputer + one-hot + logistic regression", baseline["accuracy"]]])],
        messages=[f"Encoded width: {data.n_features} inputs from {len(columns)} columns"],
    )
