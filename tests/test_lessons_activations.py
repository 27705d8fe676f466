"""The neuron and activation lessons: single-neuron, logistic-unit, activations, vanishing-gradient.

Each recipe runs once from the CLI (in this process, `--report` beside its
figures) and the tests read its report: the notes' worked numbers (z = 2.6,
σ(z) = 0.9309, σ' = σ(1 - σ) peaking at 0.25), the derivative maxima and
softmax sums, the vanishing gradient of a deep sigmoid net, the single neuron
against logistic regression, and ERRATA #7, #9 and #14.
"""

import contextlib
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path

import pytest

from recipes.core import registry
from recipes.core.errors import RunError, UsageError
from recipes.run import run_recipe

LESSONS = ("single-neuron", "logistic-unit", "activations", "vanishing-gradient")


@dataclass
class Ran:
    status: int
    report: dict
    out: str
    folder: Path

    @property
    def details(self):
        return self.report["details"]


@pytest.fixture(scope="module")
def ran(tmp_path_factory):
    """Runs `python -m recipes.run NAME ARGS... --report` once per module; returns a `Ran`.

    It calls the CLI's `run_recipe` (what `main` calls) so that stdout can be kept
    across the module's tests; the tests of exit statuses use the `cli` fixture.
    """
    cache = {}

    def run(name, *args):
        if (name, args) not in cache:
            folder = tmp_path_factory.mktemp(name)
            report = folder / "report.json"
            out = io.StringIO()
            argv = [*args, "--output-dir", str(folder / "saved_models"), "--report", str(report)]
            with contextlib.redirect_stdout(out):  # progress lines, then the result
                try:
                    run_recipe(name, argv, out=out)
                    status = 0
                except (UsageError, RunError) as error:
                    status = error.exit_status
            loaded = json.loads(report.read_text()) if report.exists() else None
            cache[name, args] = Ran(status, loaded, out.getvalue(), folder)
        return cache[name, args]

    return run


# single-neuron ---------------------------------------------------------------------------


def test_single_neuron_reproduces_the_notes_worked_numbers(ran):
    run = ran("single-neuron")
    assert run.status == 0
    assert run.details["z"] == pytest.approx(2.6, abs=1e-6)
    assert round(run.details["output"], 4) == 0.9309
    assert run.details["output"] == pytest.approx(1 / (1 + math.exp(-2.6)), abs=1e-7)
    assert run.details["by_hand"]["z"] == pytest.approx(2.6)


def test_single_neuron_gradient_tape_derivative_is_sigma_times_one_minus_sigma(ran):
    details = ran("single-neuron").details
    assert details["derivative"] == pytest.approx(details["derivative_formula"], rel=1e-5)
    assert details["derivative"] == pytest.approx(0.0644, abs=5e-5)  # quoted in the docstring
    assert details["max_derivative"] == 0.25
    assert 0.25 < details["derivative_share_of_max"] < 0.26  # "about a quarter"
    # Chain rule through the Keras layer: ∂σ/∂w_i = σ'(z)·x_i.
    by_hand = details["weight_gradients_by_hand"]
    assert details["weight_gradients"] == pytest.approx(by_hand, rel=1e-5)


def test_single_neuron_prints_its_table_and_writes_its_picture(ran):
    run = ran("single-neuron")
    assert "z = w·x + b" in run.out and "0.9309" in run.out
    assert (run.folder / "report-neuron.png").stat().st_size > 0
    assert run.report["export"] is None


def test_single_neuron_trains_nothing_so_takes_no_epochs(cli):
    status, _, err = cli("single-neuron", "--epochs", "3")
    assert status == 2 and "--epochs" in err


# logistic-unit ---------------------------------------------------------------------------


def test_logistic_unit_neuron_matches_logistic_regression(ran):
    run = ran("logistic-unit")
    assert run.status == 0
    details = run.details
    assert abs(details["neuron_accuracy"] - details["logistic_regression_accuracy"]) <= 0.035
    assert details["neuron_accuracy"] == run.report["metrics"]["accuracy"]
    assert details["agreement"] >= 0.95
    assert details["weight_cosine"] > 0.8


def test_logistic_unit_exports_a_single_neuron(ran):
    run = ran("logistic-unit")
    version = Path(run.report["export"])
    metadata = json.loads((version / "metadata.json").read_text())
    assert metadata["hyperparameters"]["hidden"] == []
    assert (version / "saved_model.pb").exists() and (version / "history.png").exists()
    assert (run.folder / "report-history.png").exists()
    assert "30 -> 1 sigmoid" in run.out and "LogisticRegression" in run.out


def test_logistic_unit_has_no_hidden_layers_to_set(cli):
    status, _, err = cli("logistic-unit", "--hidden", "4")
    assert status == 2 and "--hidden" in err


# activations -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def activations(ran):
    run = ran("activations", "--epochs", "2")
    assert run.status == 0
    return run


def test_activation_derivative_maxima(activations):
    functions = activations.details["functions"]
    assert functions["sigmoid"]["max_derivative"] == pytest.approx(0.25, abs=1e-6)
    assert functions["sigmoid"]["argmax_z"] == 0.0
    assert functions["tanh"]["max_derivative"] == pytest.approx(1.0, abs=1e-6)
    assert functions["tanh"]["argmax_z"] == 0.0
    assert functions["relu"]["derivative_values"] == [0.0, 1.0]
    assert functions["relu"]["derivative_at_0"] == 0.0  # TensorFlow's choice at the kink
    assert functions["leaky_relu"]["derivative_values"] == [0.2, 1.0]


def test_gradient_tape_matches_the_closed_forms(activations):
    for name, function in activations.details["functions"].items():
        assert function["max_error"] < 1e-6, name


def test_softmax_rows_sum_to_one_and_lie_in_zero_one(activations):
    softmax = activations.details["functions"]["softmax"]
    assert softmax["max_row_sum_error"] < 1e-6
    assert 0 < softmax["min"] and softmax["max"] < 1
    assert 0.249 < softmax["max_derivative"] <= 0.25 + 1e-6  # s_i(1 - s_i) <= 1/4
    assert softmax["two_class_vs_sigmoid_max_error"] < 1e-6


def test_errata_7_leaky_relu_slope_is_small_and_positive(activations):
    leaky = activations.details["functions"]["leaky_relu"]
    assert 0 < leaky["alpha"] < 1 and leaky["alpha"] == 0.2  # Keras's default
    assert leaky["min"] == pytest.approx(-0.2 * 6)  # range on [-6, 6]: [-α·6, 6]
    assert leaky["max"] == pytest.approx(6.0)


def test_errata_9_tanh_formula_in_one_variable(activations):
    assert activations.details["functions"]["tanh"]["notes_formula_max_error"] < 1e-6


def test_activations_trains_one_mlp_per_hidden_activation(activations):
    training = activations.details["training"]
    assert set(training) == {"sigmoid", "tanh", "relu", "leaky_relu"}
    for name, run in training.items():
        assert 0.0 <= run["test_accuracy"] <= 1.0, name
        assert len(run["loss"]) == 2 and len(run["val_loss"]) == 2, name
    first_epoch = {name: run["loss"][0] for name, run in training.items()}
    assert max(first_epoch, key=first_epoch.get) == "sigmoid"  # "sigmoid starts slowest"


def test_activations_prints_tables_and_writes_pictures(activations):
    assert "derivatives by GradientTape" in activations.out
    assert "hidden activation" in activations.out
    for picture in ("activations.png", "training.png"):
        assert (activations.folder / f"report-{picture}").stat().st_size > 0


# vanishing-gradient ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def vanishing(ran):
    run = ran("vanishing-gradient", "--epochs", "2")
    assert run.status == 0
    return run


def test_gradient_norms_per_hidden_layer(vanishing):
    norms = vanishing.details["gradient_norms"]
    assert set(norms) == {"sigmoid", "tanh", "relu", "leaky_relu"}
    assert all(len(n) == 10 for n in norms.values())
    assert norms["sigmoid"] == sorted(norms["sigmoid"])  # shrinking towards the input


def test_sigmoid_gradient_vanishes_orders_of_magnitude_below_relu(vanishing):
    ratio = vanishing.details["first_to_last_ratio"]
    assert ratio["relu"] / ratio["sigmoid"] > 1e4
    assert ratio["sigmoid"] == pytest.approx(2.5e-6, rel=0.1)  # the notes' 0.25⁹ ≈ 3.8e-6
    for name in ("tanh", "relu", "leaky_relu"):  # "within one order of magnitude"
        norms = vanishing.details["gradient_norms"][name]
        assert max(norms) / min(norms) < 10, name


def test_sigmoid_net_learns_slowest(vanishing):
    training = vanishing.details["training"]
    final = {name: run["final_loss"] for name, run in training.items()}
    assert max(final, key=final.get) == "sigmoid"
    assert final["sigmoid"] == pytest.approx(math.log(10), abs=0.05)  # still guessing


def test_errata_14_relu_units_pass_back_nothing_for_negative_z(vanishing):
    slopes = vanishing.details["derivatives"]
    assert 0.3 < slopes["relu"]["initial"]["zero_derivative_share"] < 0.7
    assert slopes["relu"]["initial"]["dead_units"] > 0
    assert slopes["leaky_relu"]["initial"]["zero_derivative_share"] == 0.0  # α, never 0
    for name in ("leaky_relu", "sigmoid", "tanh"):
        # A saturated sigmoid or tanh can round its slope to 0 in float32, on a few rows.
        assert slopes[name]["initial"]["zero_derivative_share"] < 1e-3, name
        assert slopes[name]["initial"]["dead_units"] == 0, name


def test_vanishing_gradient_prints_tables_and_writes_pictures(vanishing):
    assert "first / last" in vanishing.out
    for picture in ("gradient_norms.png", "training.png"):
        assert (vanishing.folder / f"report-{picture}").stat().st_size > 0


def test_vanishing_gradient_needs_two_hidden_layers(cli):
    status, _, err = cli("vanishing-gradient", "--hidden", "8")
    assert status == 2 and "at least 2 hidden layers" in err


# registry and defaults -------------------------------------------------------------------


def test_lessons_are_registered():
    assert set(LESSONS) <= set(registry.names())
    assert registry.get("single-neuron").options == registry.ALWAYS
    assert "hidden" not in registry.get("logistic-unit").options
    for name in ("activations", "vanishing-gradient"):
        assert {"epochs", "batch_size", "learning_rate", "optimizer", "seed"} <= set(
            registry.get(name).options)


@pytest.mark.slow
def test_docstring_claims_at_default_epochs(ran):
    """The claims of the docstrings that need the default (longer) training."""
    vanishing = ran("vanishing-gradient").details
    training = vanishing["training"]
    assert training["sigmoid"]["final_loss"] == pytest.approx(math.log(10), abs=0.05)
    assert all(training[n]["final_loss"] < 0.5 for n in ("tanh", "relu", "leaky_relu"))
    relu = vanishing["derivatives"]["relu"]
    assert relu["trained"]["dead_units"] > relu["initial"]["dead_units"] > 0  # "kills more"
    for name, run in ran("activations").details["training"].items():
        assert run["test_accuracy"] > 0.9, name
