"""Every registered recipe runs end to end from the CLI, with tiny epochs.

Parametrized over the registry, so a recipe is tested the day it is added.
"""

import json
import math

import pytest

from recipes import registry


def _quick_args(recipe):
    args = []
    if "epochs" in recipe.options:
        args += ["--epochs", "2"]
    return args


@pytest.mark.parametrize("name", registry.names())
def test_recipe_runs_end_to_end(name, run_recipe, output_dir, tmp_path):
    recipe = registry.get(name)
    status, report, out, err = run_recipe(name, *_quick_args(recipe))
    assert status == 0, err
    assert report["recipe"] == name
    assert set(report) == {"recipe", "metrics", "details", "timing", "export"}
    assert report["timing"]["total_seconds"] > 0
    assert "Traceback" not in err
    json.dumps(report)  # plain JSON all the way down
    if report["export"]:
        folder = output_dir / name / "1"
        assert report["export"] == str(folder)
        meta = json.loads((folder / "metadata.json").read_text())
        assert meta["recipe"] == name and meta["version"] == 1
    # a picture beside the report, for every recipe that draws one
    pictures = list(tmp_path.glob(f"{name}-*.png"))
    assert all(p.stat().st_size > 1000 for p in pictures)


@pytest.mark.parametrize("name", ["binary-sigmoid", "multiclass-softmax", "relu-regression", "leaky-relu-regression"])
def test_training_recipe_report_holds_metrics_baselines_and_timing(name, run_recipe):
    status, report, out, _ = run_recipe(name, "--epochs", "3")
    assert status == 0
    timing = report["timing"]
    assert {"train_seconds", "export_seconds", "total_seconds"} <= set(timing)
    assert 0 < timing["train_seconds"] < timing["total_seconds"]
    details = report["details"]
    assert details["epochs_run"] == 3
    assert details["device"].startswith(("CPU", "GPU"))
    assert len(details["baselines"]) == 2
    assert "Device: " in out and "Against baselines" in out
    for value in report["metrics"].values():
        if isinstance(value, float):
            assert math.isfinite(value)
