"""The command line: listing, help, exit statuses and messages."""

import os
import shutil
import subprocess
import sys

import pytest

from recipes.core import registry

TRAINING_RECIPES = ["binary-sigmoid", "multiclass-softmax", "relu-regression", "leaky-relu-regression"]


def _python(*code_args, **kwargs):
    return subprocess.run([sys.executable, *code_args], capture_output=True, text=True, timeout=120, **kwargs)


def test_list_shows_every_recipe_without_importing_tensorflow():
    code = (
        "import sys, io, contextlib\n"
        "from recipes.run import main\n"
        "buf = io.StringIO()\n"
        "with contextlib.redirect_stdout(buf):\n"
        "    status = main(['--list'])\n"
        "heavy = [m for m in ('tensorflow', 'keras', 'sklearn', 'matplotlib') if m in sys.modules]\n"
        "print(status, heavy)\n"
        "print(buf.getvalue())\n"
    )
    result = _python("-c", code)
    assert result.returncode == 0, result.stderr
    first, listing = result.stdout.split("\n", 1)
    assert first == "0 []"
    for name in registry.names():
        assert name in listing
        assert registry.get(name).data in listing


def test_recipe_help_does_not_import_tensorflow():
    code = (
        "import sys\n"
        "from recipes.run import main\n"
        "status = main(['binary-sigmoid', '--help'])\n"
        "print('STATUS', status, 'tensorflow' in sys.modules)\n"
    )
    result = _python("-c", code)
    assert "STATUS 0 False" in result.stdout, result.stdout + result.stderr
    assert "--learning-rate" in result.stdout
    assert "Binary classification" in result.stdout  # the lesson's first paragraph
    assert "default: 60" in result.stdout  # the recipe's own --epochs default


def test_module_entry_point_and_console_script_agree():
    by_module = _python("-m", "recipes.run", "--list")
    assert by_module.returncode == 0
    assert "multiclass-softmax" in by_module.stdout
    script = shutil.which("nn-recipes", path=os.path.dirname(sys.executable)) or shutil.which("nn-recipes")
    if script is None:
        pytest.skip("the package is not installed (pip install -e .), so there is no nn-recipes script")
    by_script = subprocess.run([script, "--list"], capture_output=True, text=True, timeout=60)
    assert by_script.returncode == 0
    assert by_script.stdout == by_module.stdout


def test_no_arguments_prints_usage_with_exit_2(cli):
    status, out, _ = cli()
    assert status == 2
    assert "usage: python -m recipes.run NAME" in out


def test_unknown_recipe_suggests_the_closest_name(cli):
    status, out, err = cli("binary-sigmod")
    assert status == 2
    assert "Unknown recipe 'binary-sigmod'" in err
    assert "Did you mean 'binary-sigmoid'?" in err
    assert "Traceback" not in err and out == ""


@pytest.mark.parametrize(
    "args, flag, words",
    [
        (["--epochs", "0"], "--epochs", "must be an integer >= 1. Received: --epochs=0"),
        (["--epochs", "two"], "--epochs", "Received: --epochs=two"),
        (["--batch-size", "-3"], "--batch-size", "must be an integer >= 1 or `full`"),
        (["--learning-rate", "0"], "--learning-rate", "must be a number in (0, inf]"),
        (["--learning-rate", "nan"], "--learning-rate", "Received: --learning-rate=nan"),
        (["--optimizer", "adamw"], "--optimizer", "must be one of sgd, momentum, adagrad, rmsprop, adam"),
        (["--hidden", "4,x"], "--hidden", "integers >= 1 separated by commas"),
        (["--hidden", "0"], "--hidden", "Received: --hidden=0"),
        (["--seed", "1.5"], "--seed", "must be an integer >= 0"),
        (["--dropout", "1"], "--dropout", "must be a number in [0, 1)"),
        (["--l2", "-1"], "--l2", "must be a number in [0, 3.40282e+38]"),
        (["--patience", "0"], "--patience", "must be an integer >= 1"),
        (["--device", "tpu"], "--device", "must be one of auto, cpu, gpu"),
        (["--strategy", "ring"], "--strategy", "must be one of auto, mirrored, multi-worker"),
        (["--no-such-option"], "--no-such-option", "unrecognized arguments"),
    ],
)
def test_bad_option_value_exits_2_naming_the_option(cli, args, flag, words):
    status, out, err = cli("binary-sigmoid", *args)
    assert status == 2
    assert flag in err
    assert words in err
    assert "Traceback" not in err
    assert err.count("\n") == 1  # one paragraph, one line


def test_target_without_data_is_a_usage_error(cli):
    status, _, err = cli("binary-sigmoid", "--target", "label")
    assert status == 2
    assert "`--target` names a column of your CSV file and needs `--data FILE.csv`" in err


def test_gpu_on_a_machine_without_one_fails_clearly(cli, output_dir):
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        pytest.skip("this machine has a GPU")
    status, _, err = cli("binary-sigmoid", "--device", "gpu", "--epochs", "1", "--output-dir", output_dir)
    assert status == 1
    assert "TensorFlow sees no GPU" in err and "--device cpu" in err
    assert not output_dir.exists()


def test_registry_refuses_duplicates_and_unknown_options():
    with pytest.raises(ValueError, match="registered twice"):
        registry.register("binary-sigmoid", scenario="x", data="x", summary="x", options=())(lambda c: c)
    with pytest.raises(ValueError, match="names options that do not exist"):
        registry.register("new-recipe", scenario="x", data="x", summary="x", options=("speed",))
    with pytest.raises(ValueError, match="names options that do not exist or that it does not take: epochs"):
        registry.register("new-recipe", scenario="x", data="x", summary="x", options=(), defaults={"epochs": 3})


def test_names_are_sorted_and_filter_by_pattern():
    names = registry.names()
    assert names == sorted(names)
    assert set(TRAINING_RECIPES) <= set(names)
    assert registry.names("*-regression") == ["leaky-relu-regression", "relu-regression"]


def test_a_closed_output_pipe_stops_the_run_quietly(tmp_path):
    """`python -m recipes.run NAME | head -1`: exit 141 like any pipe reader, no error text."""
    process = subprocess.Popen(
        [sys.executable, "-m", "recipes.run", "binary-sigmoid", "--epochs", "200", "--no-export",
         "--output-dir", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        first = process.stdout.readline()
        process.stdout.close()
        _, err = process.communicate(timeout=120)
    finally:
        process.kill()
    assert first.startswith("Epoch 1/200")
    assert process.returncode == 141
    assert "error" not in err and "Traceback" not in err
