"""Shared fixtures: run the CLI in-process, on a temporary export root."""

import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402


@pytest.fixture
def output_dir(tmp_path):
    """A fresh export root for one test."""
    return tmp_path / "saved_models"


@pytest.fixture
def cli(capsys):
    """Runs `python -m recipes.run ARGS...` in this process.

    Returns `(status, stdout, stderr)`. Running in-process shares one
    TensorFlow import across tests, which keeps the suite fast.
    """
    from recipes.run import main

    def run(*args):
        status = main([str(a) for a in args])
        captured = capsys.readouterr()
        return status, captured.out, captured.err

    return run


@pytest.fixture
def run_recipe(cli, tmp_path, output_dir):
    """Runs a recipe with a report and returns `(status, report_dict, stdout, stderr)`."""

    def run(name, *args):
        report = tmp_path / f"{name}.json"
        status, out, err = cli(name, *args, "--output-dir", output_dir, "--report", report)
        loaded = json.loads(report.read_text()) if report.exists() else None
        return status, loaded, out, err

    return run
