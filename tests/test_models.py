"""Builders, data and the training loop: argument checks and the numbers they produce."""

import keras
import numpy as np
import pytest

from models import data, evaluation, mlp, training


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


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(head="tanh"), "`head` must be one of sigmoid, softmax, relu, linear. Received: head='tanh'"),
        (dict(head="softmax", n_outputs=1), "`n_outputs` must be >= 2 for head='softmax'"),
        (dict(head="sigmoid", n_outputs=2), "`n_outputs` must be 1 for head='sigmoid'"),
        (dict(head="sigmoid", hidden=(4, 0)), r"`hidden` must hold integers >= 1. Received: hidden=\(4, 0\)"),
        (dict(head="sigmoid", activation="swish"), "`activation` must be one of"),
        (dict(head="sigmoid", dropout=1.5), r"`dropout` must be in \[0, 1\). Received: dropout=1.5"),
        (dict(head="sigmoid", l2=-0.1), "`l2` must be >= 0. Received: l2=-0.1"),
    ],
)
def test_build_checks_arguments_before_building(kwargs, message):
    x = np.ones((10, 3), np.float32)
    with pytest.raises(ValueError, match=message):
        mlp.build(x, **kwargs)


def test_build_layers_follow_the_arguments(iris):
    model = mlp.build(iris.x, head="softmax", n_outputs=3, hidden=(4, 4), activation="tanh",
                      l2=0.01, dropout=0.2)
    names = [layer.name for layer in model.layers]
    assert names == ["normalization", "hidden_1", "dropout_1", "hidden_2", "dropout_2", "output"]
    assert model.get_layer("hidden_1").kernel_regularizer.l2 == pytest.approx(0.01)
    assert model.get_layer("output").activation.__name__ == "softmax"
    # normalization is adapted on the rows given: scaled features have mean 0, variance 1
    scaled = np.asarray(model.get_layer("normalization")(iris.x))
    np.testing.assert_allclose(scaled.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(scaled.std(0), 1, atol=1e-3)


def test_regression_head_rescales_to_the_target_units():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 2)).astype(np.float32)
    y = (100 + 30 * x[:, 0]).astype(np.float32)
    scale = mlp.target_scale("linear", y)
    assert scale[0] == pytest.approx(y.mean(), rel=1e-5) and scale[1] == pytest.approx(y.std(), rel=1e-5)
    assert mlp.target_scale("relu", y)[0] == 0.0
    assert mlp.target_scale("softmax", y) is None
    keras.utils.set_random_seed(0)
    model = mlp.build(x, head="linear", hidden=(8,), target_scale=scale)
    training.compile(model, head="linear", learning_rate=0.05, target_scale=scale)
    training.fit(model, x, y, epochs=40, batch_size=32, verbose=0)
    predictions = training.predict(model, x)[:, 0]
    assert evaluation.metrics("regression", y, predictions)["r2"] > 0.95


def test_make_optimizer_returns_the_keras_builtins():
    assert isinstance(training.make_optimizer("adam", 0.1), keras.optimizers.Adam)
    momentum = training.make_optimizer("momentum", 0.1)
    assert isinstance(momentum, keras.optimizers.SGD) and momentum.momentum == 0.9
    with pytest.raises(ValueError, match="`optimizer` must be one of sgd, momentum"):
        training.make_optimizer("adamw", 0.1)
    with pytest.raises(ValueError, match="`learning_rate` must be a number > 0"):
        training.make_optimizer("sgd", 0)


def test_fast_fit_matches_model_fit_on_the_same_seed(iris):
    """The epoch-in-one-tf.function loop trains as well as Keras's own model.fit."""
    split = data.split(iris, seed=0)

    def trained(loop):
        keras.utils.set_random_seed(7)
        model = mlp.build(split.x_train, head="softmax", n_outputs=3, hidden=(8,))
        training.compile(model, head="softmax", learning_rate=0.02)
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
    model = mlp.build(x, head="softmax", n_outputs=3, hidden=(4,))
    training.compile(model, head="softmax")
    for batch_size, steps in (("full", 1), (1, 100), (32, 4)):
        history = training.fit(model, x, y, epochs=1, batch_size=batch_size, verbose=0)
        assert history.steps_per_epoch == steps
    assert int(model.optimizer.iterations.numpy()) == 1 + 100 + 4
    with pytest.raises(ValueError, match="`batch_size` must be an integer >= 1 or 'full'"):
        training.fit(model, x, y, epochs=1, batch_size=0)


def test_early_stopping_callback_works_in_the_fast_loop(iris):
    split = data.split(iris, seed=0)
    model = mlp.build(split.x_train, head="softmax", n_outputs=3, hidden=(4,))
    training.compile(model, head="softmax", learning_rate=0.5)  # noisy: val loss stops improving
    stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True)
    history = training.fit(model, split.x_train, split.y_train, epochs=200, batch_size=8,
                           validation_data=(split.x_val, split.y_val), callbacks=[stop], verbose=0)
    epochs_run = len(history.history["loss"])
    assert epochs_run < 200
    assert stop.stopped_epoch == epochs_run - 1
