"""Data, the preprocessing front-end, optimizers and the training loop: checks and numbers."""

import keras
import numpy as np
import pytest

from models import data, training
from models.data.prepared import prepare
from models.training import evaluation, optimizers


@pytest.fixture(scope="module")
def iris():
    return data.load("iris")


def test_bundled_sets_load_with_names_and_tasks():
    expected = {
        "breast_cancer": ("binary", (569, 30), 2),
        "iris": ("multiclass", (150, 4), 3),
        "wine": ("multiclass", (178, 13), 3),
        "digits": ("multiclass", (1797, 64), 10),
        "diabetes": ("regression", (442, 10), None),
        "diabetes_centered": ("regression", (442, 10), None),
    }
    for name, (task, shape, n_classes) in expected.items():
        dataset = data.load(name)
        assert (dataset.task, dataset.x.shape, dataset.n_classes) == (task, shape, n_classes)
        assert dataset.x.dtype == np.float32 and len(dataset.feature_names) == shape[1]
    centred = data.load("diabetes_centered").y
    assert abs(centred.mean()) < 1e-3 and 0.4 < (centred < 0).mean() < 0.6
    with pytest.raises(ValueError, match="`name` must be one of breast_cancer"):
        data.load("mnist")


def test_split_is_seeded_and_stratified(iris):
    first, again, other = data.split(iris, seed=3), data.split(iris, seed=3), data.split(iris, seed=4)
    np.testing.assert_array_equal(first.x_train, again.x_train)
    assert not np.array_equal(first.x_train, other.x_train)
    assert (len(first.y_train), len(first.y_val), len(first.y_test)) == (90, 30, 30)
    for part in (first.y_train, first.y_val, first.y_test):
        counts = np.bincount(part, minlength=3)
        assert counts.max() - counts.min() <= 1  # iris is 50/50/50: stratified parts stay balanced
    rows = np.concatenate([first.x_train, first.x_val, first.x_test])
    assert len(np.unique(rows, axis=0)) == len(np.unique(iris.x, axis=0))


def test_split_refuses_data_too_small_to_split():
    tiny = data.Dataset("tiny", np.zeros((6, 2), np.float32), np.array([0, 1] * 3), ["a", "b"], "t",
                        "binary", ["no", "yes"])
    with pytest.raises(data.DataError, match="too few to split"):
        data.split(tiny, seed=0)
    with pytest.raises(ValueError, match="`test_fraction` must be in"):
        data.split(data.load("iris"), seed=0, test_fraction=1.5)


def _softmax_model(prepared, hidden=(8,), learning_rate=0.01):
    """The notes' MLP shape on `prepared`: Normalization, tanh hidden layers, softmax."""
    network = keras.Sequential([*(keras.layers.Dense(u, activation="tanh") for u in hidden),
                                keras.layers.Dense(prepared.n_classes, activation="softmax")])
    model = prepared.with_preprocessing(network)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def test_front_end_normalizes_on_the_training_rows(iris):
    prepared = prepare(iris, seed=0)
    model = _softmax_model(prepared)
    assert [type(layer).__name__ for layer in model.layers] == [
        "InputLayer", "Normalization", "Sequential"]
    scaled = np.asarray(model.get_layer("normalization")(prepared.x_train))
    np.testing.assert_allclose(scaled.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(scaled.std(0), 1, atol=1e-3)
    assert prepared.target_scale is None
    exported = prepared.for_export(model)  # the same model, and NaN = missing = the training mean
    x = prepared.x_test[:4].copy()
    np.testing.assert_allclose(exported(x), model(x), atol=1e-6)
    x[0, 1] = np.nan
    x[1] = np.nan
    mean = prepared.x_train.astype(np.float64).mean(axis=0).astype(np.float32)
    filled = np.where(np.isnan(x), mean, x)
    np.testing.assert_allclose(exported(x), model(filled), atol=1e-6)
    assert np.isfinite(np.asarray(exported(x))).all()


def test_a_feature_constant_in_training_is_centred_not_blown_up():
    digits = prepare(data.load("digits"), seed=0)
    constant = np.ptp(digits.x_train, axis=0) == 0
    assert constant.any()  # some pixels are blank in every training digit
    inputs, normalized = digits.preprocessing()
    scaled = np.asarray(keras.Model(inputs, normalized)(digits.x_test))
    assert np.abs(scaled[:, constant]).max() <= 16  # raw pixel range, not millions of sigmas


def test_regression_target_is_learned_at_unit_size_and_exported_in_its_units():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 2)).astype(np.float32)
    y = (100 + 30 * x[:, 0]).astype(np.float32)
    table = data.Dataset("line", x, y, ["a", "b"], "y", "regression")
    centred, scaled = prepare(table, seed=0), prepare(table, seed=0, scaling="scale")
    assert centred.target_scale == pytest.approx((centred.split.y_train.mean(),
                                                  centred.split.y_train.std()), rel=1e-5)
    assert abs(float(centred.y_train.mean())) < 1e-5 and abs(float(centred.y_train.std()) - 1) < 1e-5
    assert scaled.target_scale[0] == 0.0 and float(scaled.y_train.min()) > 0
    keras.utils.set_random_seed(0)
    model = centred.with_preprocessing(keras.Sequential([keras.layers.Dense(8, activation="relu"),
                                                         keras.layers.Dense(1)]))
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="mean_squared_error")
    training.fit(model, centred.x_train, centred.y_train, epochs=40, batch_size=32, verbose=0)
    exported = centred.for_export(model)
    assert exported.layers[-1].name == "target_scale"
    predictions = training.predict(exported, centred.x_test)[:, 0]
    assert evaluation.metrics("regression", centred.split.y_test, predictions)["r2"] > 0.95
    with pytest.raises(ValueError, match="`scaling` must be one of centre, scale"):
        prepare(table, seed=0, scaling="log")


def test_optimizers_are_the_keras_builtins():
    assert isinstance(optimizers.make("adam", 0.1), keras.optimizers.Adam)
    momentum = optimizers.make("momentum", 0.1)
    assert isinstance(momentum, keras.optimizers.SGD) and momentum.momentum == 0.9
    with pytest.raises(ValueError, match="`optimizer` must be one of sgd, momentum"):
        optimizers.make("adamw", 0.1)
    with pytest.raises(ValueError, match="`learning_rate` must be a number > 0"):
        optimizers.make("sgd", 0)


def test_fast_fit_matches_model_fit_on_the_same_seed(iris):
    """The epoch-in-one-tf.function loop trains as well as Keras's own model.fit."""
    split = prepare(iris, seed=0)

    def trained(loop):
        keras.utils.set_random_seed(7)
        model = _softmax_model(split, learning_rate=0.02)
        if loop == "ours":
            history = training.fit(model, split.x_train, split.y_train, epochs=30, batch_size=16,
                                   validation_data=(split.x_val, split.y_val), verbose=0).history
        else:
            history = model.fit(split.x_train, split.y_train, epochs=30, batch_size=16,
                                validation_data=(split.x_val, split.y_val), verbose=0).history
        accuracy = evaluation.metrics("multiclass", split.y_test, training.predict(model, split.x_test), 3)
        return history, accuracy["accuracy"]

    ours, ours_accuracy = trained("ours")
    keras_fit, keras_accuracy = trained("keras")
    assert len(ours["loss"]) == len(keras_fit["loss"]) == 30
    assert ours["loss"][-1] < ours["loss"][0] / 2
    assert abs(ours["loss"][-1] - keras_fit["loss"][-1]) < 0.1
    assert abs(ours_accuracy - keras_accuracy) <= 0.1
    assert ours_accuracy >= 0.85


def test_fit_steps_per_epoch_follow_the_batch_size(iris):
    x, y = iris.x[:100], iris.y[:100]
    model = _softmax_model(prepare(iris, seed=0), hidden=(4,))
    for batch_size, steps in (("full", 1), (1, 100), (32, 4)):
        history = training.fit(model, x, y, epochs=1, batch_size=batch_size, verbose=0)
        assert history.steps_per_epoch == steps
    assert int(model.optimizer.iterations.numpy()) == 1 + 100 + 4
    with pytest.raises(ValueError, match="`batch_size` must be an integer >= 1 or 'full'"):
        training.fit(model, x, y, epochs=1, batch_size=0)


def test_early_stopping_callback_works_in_the_fast_loop(iris):
    split = prepare(iris, seed=0)
    model = _softmax_model(split, hidden=(4,), learning_rate=0.5)  # noisy: val loss stops improving
    stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True)
    history = training.fit(model, split.x_train, split.y_train, epochs=200, batch_size=8,
                           validation_data=(split.x_val, split.y_val), callbacks=[stop], verbose=0)
    epochs_run = len(history.history["loss"])
    assert epochs_run < 200
    assert stop.stopped_epoch == epochs_run - 1
