"""`recipes.cook`: a recipe from Python, with the CLI's options as keywords, checks and numbers."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

import recipes

ROOT = Path(__file__).resolve().parents[1]


def test_importing_recipes_imports_nothing_heavy():
    code = ("import sys, recipes\nassert callable(recipes.cook)\n"
            "print([m for m in ('tensorflow', 'keras', 'numpy', 'matplotlib') if m in sys.modules])")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_cook_gives_the_clis_numbers_for_the_same_options(cli, capsys, tmp_path):
    import matplotlib.figure

    args = ["--epochs", "3", "--hidden", "5,3", "--batch-size", "16", "--learning-rate", "0.02"]
    report = tmp_path / "cli.json"
    status, _, err = cli("multiclass-softmax", *args, "--output-dir", tmp_path / "cli",
                         "--report", report)
    assert status == 0, err
    from_cli = json.loads(report.read_text())

    result = recipes.cook("multiclass-softmax", epochs=3, hidden=(5, 3), batch_size=16,
                          learning_rate=0.02, output_dir=tmp_path / "cook")
    assert capsys.readouterr().out == ""  # silent unless verbose=True
    assert result.metrics == from_cli["metrics"]
    assert result.details["final_loss"] == from_cli["details"]["final_loss"]
    assert result.details["epochs_run"] == 3
    assert result.export == str(tmp_path / "cook" / "multiclass-softmax" / "1")
    metadata = json.loads((Path(result.export) / "metadata.json").read_text())
    assert metadata["hyperparameters"]["hidden"] == [5, 3]
    assert metadata["hyperparameters"]["batch_size"] == 16
    assert len(result.history["loss"]) == 3 and len(result.history["val_accuracy"]) == 3
    assert result.history["loss"][-1] == pytest.approx(from_cli["details"]["final_loss"])
    assert result.figures and all(isinstance(f, matplotlib.figure.Figure)
                                  for f in result.figures.values())
    assert "multiclass-softmax" in repr(result) and "accuracy" in repr(result)


def test_cook_verbose_prints_what_the_cli_prints(capsys, tmp_path):
    result = recipes.cook("single-neuron", verbose=True, output_dir=tmp_path)
    out = capsys.readouterr().out
    assert "The worked neuron" in out and "Export: none" in out
    assert result.details["z"] == pytest.approx(2.6, abs=1e-6)
    assert result.export is None and result.history == {}


def test_a_bad_value_is_a_value_error_with_the_clis_message(cli, tmp_path):
    status, _, err = cli("multiclass-softmax", "--epochs", "0", "--output-dir", tmp_path)
    assert status == 2
    with pytest.raises(ValueError) as raised:
        recipes.cook("multiclass-softmax", epochs=0, output_dir=tmp_path)
    assert f"error: {raised.value}\n" == err
    assert "`--epochs` must be an integer >= 1. Received: --epochs=0." in str(raised.value)
    with pytest.raises(ValueError, match=r"`--learning-rate` must be a number in \(0, inf\]"):
        recipes.cook("multiclass-softmax", learning_rate=-1)
    with pytest.raises(ValueError, match="`no_export` is a switch: pass True or False"):
        recipes.cook("multiclass-softmax", no_export="yes")
    assert not (tmp_path / "multiclass-softmax").exists()  # nothing trained, nothing written


def test_a_bad_keyword_or_recipe_is_a_value_error_naming_it():
    with pytest.raises(ValueError, match="`multiclass-softmax` takes no keyword `optimiser`. "
                                         "Did you mean `optimizer`?"):
        recipes.cook("multiclass-softmax", optimiser="adam")
    # an option of other recipes that this one does not take
    with pytest.raises(ValueError, match="`optimizers` takes no keyword `optimizer`"):
        recipes.cook("optimizers", optimizer="sgd")
    with pytest.raises(ValueError, match="Unknown recipe 'optimiser'. Did you mean 'optimizers'?"):
        recipes.cook("optimiser")


_BACKEND = """
import sys, types
import matplotlib
if sys.argv[1] == "notebook":
    sys.modules["ipykernel"] = types.ModuleType("ipykernel")  # what a Jupyter kernel has loaded
matplotlib.use("svg")  # stands in for the notebook's inline backend
import recipes.core.plots
print(matplotlib.get_backend())
"""


@pytest.mark.parametrize("where, backend", [("notebook", "svg"), ("script", "agg")])
def test_the_figures_keep_a_notebooks_backend_and_use_agg_elsewhere(where, backend):
    done = subprocess.run([sys.executable, "-c", _BACKEND, where], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().lower() == backend
