"""Every registered recipe runs end to end from the CLI, with tiny epochs.

Parametrized over the registry, so a recipe is tested the day it is added.
"""

import json
import math

import pytest

from recipes.core import registry


def _quick_args(recipe):
    args = []
    if "epochs" in recipe.options:
        args += ["--epochs", "2"]
    return args


PRINTS_INSTEAD_OF_DRAWING = {"decision-tree-entropy"}
"""Recipes whose lesson is a printed table or tree, not a picture."""


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
    # every lesson but the tree (which prints itself) draws a picture, saved beside the report
    pictures = list(tmp_path.glob(f"{name}-*.png"))
    if name in PRINTS_INSTEAD_OF_DRAWING:
        assert pictures == [] and "entropy" in out
        return
    assert pictures, f"{name} saved no figure beside its report"
    for picture in pictures:
        assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and picture.stat().st_size > 1000


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


def test_a_figure_saved_to_two_folders_is_drawn_once(tmp_path):
    """The export's copy and the report's copy of a figure are the same PNG, rendered once."""
    from recipes.core import plots, report

    figure = plots.history({"loss": [1.0, 0.5, 0.25], "val_loss": [1.1, 0.7, 0.5]}, "three epochs")
    draws = []
    figure.canvas.mpl_connect("draw_event", lambda event: draws.append(event))
    first = report.save_figures({"history.png": figure}, tmp_path / "export")
    drawn = len(draws)
    second = report.save_figures({"history.png": figure}, tmp_path / "report", prefix="run-")
    assert drawn >= 1 and len(draws) == drawn
    assert second[0].name == "run-history.png"
    assert first[0].read_bytes() == second[0].read_bytes()
    assert first[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in (tmp_path / "report").iterdir()] == ["run-history.png"]  # no temp file
