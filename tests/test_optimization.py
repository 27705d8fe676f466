"""The optimization lessons: reference update rules against Keras, and the two recipes.

ERRATA #3 (momentum's sign), #4 (AdaGrad's accumulator and ε), #5, #12
and #13 (the three gradient-descent variants and the one-weight walk), #15
(Adam's memory).
"""

import math

import numpy as np
import pytest

from models.lessons import update_rules

NAMES = ("sgd", "momentum", "adagrad", "rmsprop", "adam")
LEARNING_RATES = (0.001, 0.01, 0.1, 0.5)
STEPS = 25


@pytest.mark.parametrize("name", NAMES)
def test_reference_rule_matches_keras_step_for_step(name):
    from models.lessons.optimization import keras_trajectory, random_gradients

    rng = np.random.default_rng(7)
    worst = 0.0
    for i, learning_rate in enumerate(LEARNING_RATES):
        weights = rng.normal(size=(6, 5)).astype(np.float32)
        gradients = random_gradients(STEPS, weights.shape, seed=i)
        ours = update_rules.trajectory(name, weights, gradients, learning_rate=learning_rate)
        theirs = keras_trajectory(name, weights, gradients, learning_rate)
        assert ours.shape == theirs.shape == (STEPS, 6, 5)
        assert ours.dtype == np.float32
        assert not np.allclose(theirs[-1], weights)  # the check is not vacuous
        worst = max(worst, float(np.max(np.abs(ours - theirs))))
    assert worst < 1e-6


@pytest.mark.parametrize("name", NAMES)
def test_keras_replay_is_eager_apply_bit_for_bit_at_every_learning_rate(name):
    """The traced replay (one graph loop, reused across learning rates) = one eager apply a step."""
    import keras

    from models.lessons.optimization import KerasReplay, random_gradients
    from models.training import optimizers

    replay = KerasReplay(name, (6, 5))
    rng = np.random.default_rng(11)
    for i, learning_rate in enumerate((*LEARNING_RATES, LEARNING_RATES[0])):  # back to the first
        weights = rng.normal(size=(6, 5)).astype(np.float32)
        gradients = random_gradients(STEPS, weights.shape, seed=20 + i)
        variable = keras.Variable(weights)
        optimizer = optimizers.make(name, learning_rate)
        optimizer.build([variable])
        eager = []
        for gradient in gradients:
            optimizer.apply([keras.ops.convert_to_tensor(gradient)], [variable])
            eager.append(np.array(variable.numpy()))
        assert np.array_equal(replay(weights, gradients, learning_rate), np.stack(eager))


def _notes_momentum(weights, gradient, state=None, *, learning_rate, eta=0.9):
    """The notes' momentum as written: v = η·v − α·∇J, W := W − v."""
    velocity = (np.zeros_like(weights) if state is None else state) * eta - learning_rate * gradient
    return weights - velocity, velocity


def _notes_adagrad(weights, gradient, state=None, *, learning_rate, epsilon=1e-7):
    """The notes' AdaGrad as written: G(0) = 0, W := W − η / (√G + ε) · ∇J."""
    accumulator = (np.zeros_like(weights) if state is None else state) + gradient**2
    return weights - learning_rate / (np.sqrt(accumulator) + epsilon) * gradient, accumulator


def _descend(rule, steps=10):
    """Weights after each step of `rule` on C(w) = w² / 2 (so ∂C/∂w = w), from w = 1."""
    weights, state, path = np.array([1.0]), None, []
    for _ in range(steps):
        weights, state = rule(weights, weights, state, learning_rate=0.1)
        path.append(float(weights[0]))
    return path


def test_notes_momentum_sign_climbs_the_loss_and_keras_does_not():
    keras_like, as_written = _descend(update_rules.momentum), _descend(_notes_momentum)
    assert abs(keras_like[-1]) < 1.0  # towards the minimum at 0
    assert as_written[-1] > 10.0  # away from it: the loss grows at every step
    assert all(b > a for a, b in zip(as_written, as_written[1:]))


@pytest.mark.parametrize(
    "name, notes", [("momentum", _notes_momentum), ("adagrad", _notes_adagrad)])
def test_the_notes_formulas_as_written_do_not_match_keras(name, notes):
    from models.lessons.optimization import keras_trajectory, random_gradients

    weights = np.random.default_rng(3).normal(size=(8,)).astype(np.float32)
    gradients = random_gradients(STEPS, weights.shape, seed=3)
    theirs = keras_trajectory(name, weights, gradients, 0.01)
    state, path = None, []
    for gradient in gradients:
        weights, state = notes(weights, gradient, state, learning_rate=0.01)
        path.append(weights)
    assert np.max(np.abs(np.stack(path) - theirs)) > 1e-3


def test_adagrad_first_step_uses_the_initial_accumulator_inside_the_root():
    w, accumulator = update_rules.adagrad(np.array([0.0]), np.array([0.5]), learning_rate=1.0)
    assert accumulator[0] == pytest.approx(0.1 + 0.25)
    assert w[0] == pytest.approx(-0.5 / math.sqrt(0.35 + 1e-7))


def test_adam_folds_the_bias_correction_into_the_step_size():
    g = np.array([0.2])
    w, (m, v, t) = update_rules.adam(np.array([0.0]), g, learning_rate=0.1)
    alpha = 0.1 * math.sqrt(1 - 0.999) / (1 - 0.9)
    assert t == 1
    assert w[0] == pytest.approx(-alpha * m[0] / (math.sqrt(v[0]) + 1e-7))
    # Kingma & Ba's form, η·m̂ / (√v̂ + ε̂), is the same step when ε̂ = ε / √(1 − β₂ᵗ).
    m_hat, v_hat = m[0] / (1 - 0.9), v[0] / (1 - 0.999)
    paper = -0.1 * m_hat / (math.sqrt(v_hat) + 1e-7 / math.sqrt(1 - 0.999))
    assert w[0] == pytest.approx(paper, rel=1e-12)
    assert w[0] == pytest.approx(-0.1, rel=1e-4)  # the first step is about −η·sign(g)


@pytest.mark.parametrize("name", NAMES)
def test_state_per_weight_matches_keras(name):
    import keras

    from models.lessons.optimization import state_per_weight
    from models.training import optimizers

    variables = [keras.Variable(np.zeros((3, 4), np.float32)),
                 keras.Variable(np.zeros(5, np.float32))]
    optimizer = optimizers.make(name, 0.01)
    optimizer.build(variables)
    assert state_per_weight(optimizer, 17) == update_rules.STATE_PER_WEIGHT[name]
    assert update_rules.STATE_PER_WEIGHT["adam"] == max(update_rules.STATE_PER_WEIGHT.values())


def test_rules_refuse_bad_arguments():
    with pytest.raises(ValueError, match="`name` must be one of sgd, momentum"):
        update_rules.trajectory("nesterov", np.zeros(2), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="`gradient` must have the shape of `weights`"):
        update_rules.sgd(np.zeros(2), np.zeros(3))


def test_timing_and_epochs_to_target():
    from models.lessons.optimization import epochs_to_target, timing

    tracing, per_epoch, clock = timing([1.1, 0.1, 0.1, 0.3])
    assert per_epoch == pytest.approx(0.1)
    assert tracing == pytest.approx(1.0)
    assert clock == pytest.approx([0.1, 0.2, 0.3, 0.6])
    assert epochs_to_target([0.5, 0.2, 0.09, 0.05], 0.1) == 3
    assert epochs_to_target([0.5, 0.2], 0.1) is None


def _pngs(tmp_path, name):
    return sorted(p.name for p in tmp_path.glob(f"{name}-*.png") if p.stat().st_size > 1000)


def test_gradient_descent_recipe(run_recipe, tmp_path):
    status, report, out, err = run_recipe("gradient-descent", "--epochs", "2", "--no-export")
    assert status == 0, err
    details = report["details"]
    n_train = details["rows"]["train"]
    variants = [details[k] for k in ("full-batch", "stochastic", "mini-batch")]
    assert [v["steps_per_epoch"] for v in variants] == [1, n_train, math.ceil(n_train / 32)]
    assert [v["batch_size"] for v in variants] == [n_train, 1, 32]
    assert len({v["initial_weights_sha256"] for v in variants}) == 1
    for v in variants:
        assert v["seconds"] > 0 and v["final_loss"] > 0 and 0 <= v["test_metric"] <= 1

    walk, eta = details["walk"], details["walk_settings"]["learning_rate"]
    assert len(walk) == 10 and walk[0]["weight"] == 0.9
    for step, after in zip(walk, walk[1:]):
        assert after["weight"] == step["new_weight"]
        assert after["loss"] < step["loss"]  # each step goes down the loss
    for step in walk:
        by_hand = step["weight"] - eta * step["gradient"]
        assert step["new_weight"] == pytest.approx(by_hand, abs=1e-15)
        assert abs(step["keras_new_weight"] - step["new_weight"]) < 1e-5  # float32 in Keras
    assert details["walk_max_abs_diff"] < 1e-5
    # The walk the docstring quotes: 0.9 → 0.7022 → 0.5205 → … → −0.3690.
    assert [round(s["weight"], 4) for s in walk[:3]] == [0.9, 0.7022, 0.5205]
    assert round(walk[-1]["new_weight"], 4) == -0.3690
    assert [round(details["walk_settings"]["learning_rate"] * s["gradient"], 3)
            for s in walk[:2]] == [0.198, 0.182]

    assert "Full batch vs stochastic vs mini-batch" in out and "W_new (Keras SGD)" in out
    assert "Device: CPU" in out or "Device: GPU" in out
    assert _pngs(tmp_path, "gradient-descent") == ["gradient-descent-history.png",
                                                    "gradient-descent-loss_curves.png"]


def test_gradient_descent_mini_batch_size_follows_batch_size(run_recipe):
    status, report, _, err = run_recipe("gradient-descent", "--epochs", "1", "--batch-size", "64",
                                        "--no-export")
    assert status == 0, err
    n_train = report["details"]["rows"]["train"]
    assert report["details"]["mini-batch"]["steps_per_epoch"] == math.ceil(n_train / 64)


def test_gradient_descent_takes_a_csv(run_recipe, tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 3))
    rows = ["a,b,c,label"] + [f"{a:.4f},{b:.4f},{c:.4f},{int(a + b > 0)}" for a, b, c in x]
    csv = tmp_path / "points.csv"
    csv.write_text("\n".join(rows) + "\n")
    status, report, out, err = run_recipe("gradient-descent", "--data", csv, "--target", "label",
                                          "--epochs", "1", "--no-export")
    assert status == 0, err
    details = report["details"]
    assert details["rows"]["train"] == 72
    assert details["full-batch"]["steps_per_epoch"] == 1
    assert details["stochastic"]["steps_per_epoch"] == 72
    assert details["walk_settings"]["feature"] == "a"  # no "mean texture": the first column
    assert details["walk_max_abs_diff"] < 1e-5


def test_optimizers_recipe(run_recipe, tmp_path):
    status, report, out, err = run_recipe("optimizers", "--epochs", "2", "--no-export")
    assert status == 0, err
    details = report["details"]
    for name in NAMES:
        entry = details[name]
        assert set(entry) >= {"final_loss", "test_metric", "epochs_to_target"}
        assert entry["epochs_to_target"] is None or 1 <= entry["epochs_to_target"] <= 2
        assert entry["state_per_weight"] == update_rules.STATE_PER_WEIGHT[name]
        assert details["reference_max_abs_diff"][name] < 1e-6
    assert len({details[n]["initial_weights_sha256"] for n in NAMES}) == 1
    assert details["exported"] in NAMES
    assert "|reference - Keras|" in out
    assert _pngs(tmp_path, "optimizers") == ["optimizers-history.png",
                                              "optimizers-optimizer_curves.png"]


def test_a_killed_optimizers_run_resumes_at_the_variant_it_reached(run_recipe, monkeypatch):
    import keras

    from models.training import loop

    fit = loop.fit

    def killed_at_adagrad(model, *args, **kwargs):
        if isinstance(model.optimizer, keras.optimizers.Adagrad):
            raise KeyboardInterrupt
        return fit(model, *args, **kwargs)

    monkeypatch.setattr(loop, "fit", killed_at_adagrad)
    status, report, _, _ = run_recipe("optimizers", "--epochs", "2", "--no-export")
    assert status == 130 and report is None
    monkeypatch.setattr(loop, "fit", fit)

    status, resumed, out, err = run_recipe("optimizers", "--epochs", "2", "--no-export")
    assert status == 0, err
    assert "Resuming (sgd) from epoch 2 of 2" in out and "Resuming (momentum)" in out
    assert "Resuming (adagrad)" not in out
    status, plain, plain_out, err = run_recipe("optimizers", "--epochs", "2", "--no-export")
    assert status == 0, err
    assert "Resuming" not in plain_out  # the completed run removed its checkpoints
    for name in NAMES:
        for key in ("final_loss", "final_val_loss", "test_metric", "initial_weights_sha256"):
            assert resumed["details"][name][key] == plain["details"][name][key], (name, key)
    assert resumed["metrics"] == plain["metrics"]


def test_optimizer_option_errors(cli):
    status, _, err = cli("gradient-descent", "--optimizer", "adamw")
    assert status == 2
    assert "sgd, momentum, adagrad, rmsprop, adam" in err
    status, _, err = cli("optimizers", "--optimizer", "adam")  # it runs all five
    assert status == 2
    assert "--optimizer" in err


@pytest.mark.slow
def test_default_runs_keep_the_docstrings_true(run_recipe):
    """The default runs' claims in the two recipes' docstrings."""
    status, report, _, err = run_recipe("gradient-descent", "--no-export")
    assert status == 0, err
    full, one, mini = (report["details"][k] for k in ("full-batch", "stochastic", "mini-batch"))
    assert one["steps_per_epoch"] == 341
    assert one["final_loss"] < mini["final_loss"] < full["final_loss"]
    assert one["seconds_per_epoch"] > mini["seconds_per_epoch"]

    status, report, _, err = run_recipe("optimizers", "--no-export")
    assert status == 0, err
    reached = {n: report["details"][n]["epochs_to_target"] for n in NAMES}
    assert reached["sgd"] is None and reached["adagrad"] is None
    assert max(reached["rmsprop"], reached["adam"]) < reached["momentum"] <= 40
