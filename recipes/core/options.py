"""The command-line options every recipe shares, checked in one place.

Each option is data in `OPTIONS`: its flag, its help, how its value is read and
checked. A recipe names the options it takes and its own defaults (see
`recipes.core.registry.register`); `parser_for(recipe)` builds its parser, and
`parse(recipe, argv)` turns a command line into a `RunConfig`. A bad value is a
`UsageError` (exit status 2) in one shape:

    `--epochs` must be an integer >= 1. Received: --epochs=0.

This module and what it imports use the standard library only: `--help` never
imports TensorFlow.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass, field, fields

from models.export.layout import FLOAT32_MAX
from models.training.devices import DEVICES
from models.training.distribute import STRATEGIES
from models.training.optimizers import NAMES as OPTIMIZERS
from recipes.core.errors import UsageError


class _Invalid(argparse.ArgumentTypeError):
    pass


def _integer(minimum, maximum=None):
    rule = f"an integer >= {minimum}" + ("" if maximum is None else f" and <= {maximum}")

    def read(text):
        try:
            value = int(text)
        except ValueError:
            raise _Invalid(f"must be {rule}. Received: {{flag}}={text}.")
        if value < minimum or (maximum is not None and value > maximum):
            raise _Invalid(f"must be {rule}. Received: {{flag}}={text}.")
        return value

    return read


def _number(low, high=math.inf, *, low_open=False, high_open=False):
    left, right = "(" if low_open else "[", ")" if high_open else "]"
    rule = f"a number in {left}{low:g}, {'inf' if high == math.inf else f'{high:g}'}{right}"

    def read(text):
        try:
            value = float(text)
        except ValueError:
            raise _Invalid(f"must be {rule}. Received: {{flag}}={text}.")
        too_low = value <= low if low_open else value < low
        too_high = value >= high if high_open else value > high
        if not math.isfinite(value) or too_low or too_high:
            raise _Invalid(f"must be {rule}. Received: {{flag}}={text}.")
        return value

    return read


def _batch_size(text):
    if text == "full":
        return "full"
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise _Invalid(f"must be an integer >= 1 or `full`. Received: {{flag}}={text}.")
    return value


def _hidden(text):
    parts = [p.strip() for p in text.split(",")]
    try:
        units = tuple(int(p) for p in parts)
    except ValueError:
        units = ()
    if not units or any(u < 1 for u in units):
        raise _Invalid(
            "must be hidden-layer sizes, integers >= 1 separated by commas (e.g. 16,8). "
            f"Received: {{flag}}={text}."
        )
    return units


def _choice(choices):
    def read(text):
        if text not in choices:
            raise _Invalid(f"must be one of {', '.join(choices)}. Received: {{flag}}={text}.")
        return text

    return read


@dataclass(frozen=True)
class Option:
    """One common option: its flag, help text, reader (parse and check) and default."""

    flag: str
    help: str
    read: object = None
    default: object = None
    metavar: str | None = None
    flag_only: bool = False
    repeat: bool = False  # may be given more than once; the values form a tuple


OPTIONS = {
    "epochs": Option("--epochs", "passes over the training split", _integer(1), 50, "N"),
    "batch_size": Option(
        "--batch-size", "rows per gradient step, or `full` for the whole training split",
        _batch_size, 32, "B",
    ),
    "hidden": Option(
        "--hidden", "hidden layer sizes, comma-separated", _hidden, (16, 8), "U1,U2,...",
    ),
    "optimizer": Option(
        "--optimizer", f"Keras optimizer: {', '.join(OPTIMIZERS)} (momentum = SGD, momentum 0.9)",
        _choice(OPTIMIZERS), "adam", "NAME",
    ),
    "learning_rate": Option(
        "--learning-rate", "the optimizer's step size",
        _number(0, low_open=True), 0.01, "LR",
    ),
    "l2": Option(
        "--l2", "L2 penalty λ on hidden kernels (adds λ·Σw² to the loss)",
        _number(0, FLOAT32_MAX), 0.0, "λ",
    ),
    "dropout": Option(
        "--dropout", "dropout rate after each hidden layer", _number(0, 1, high_open=True),
        0.0, "RATE",
    ),
    "patience": Option(
        "--patience", "stop after N epochs without a better validation loss and keep the "
        "best epoch's weights", _integer(1), None, "N",
    ),
    "seed": Option(
        "--seed", "seeds Python, NumPy and TensorFlow", _integer(0, 2**32 - 1), 42, "S",
    ),
    "data": Option(
        "--data", "train on this CSV file (header row) instead of the default data set",
        str, None, "FILE.csv",
    ),
    "target": Option("--target", "the CSV column to predict (with --data)", str, None, "COLUMN"),
    "drop": Option(
        "--drop", "leave this CSV column out of the features (with --data); repeat for more",
        str, (), "COLUMN", repeat=True,
    ),
    "categorical": Option(
        "--categorical", "read this CSV column as categories even if its cells are numbers "
        "(e.g. a class coded 1/2/3; with --data); repeat for more. Text columns are "
        "categorical anyway; empty cells and NA, N/A, NaN, null, None, #N/A count as missing",
        str, (), "COLUMN", repeat=True,
    ),
    "output_dir": Option(
        "--output-dir", "export root: models land in DIR/NAME/VERSION/", str, "saved_models",
        "DIR",
    ),
    "no_export": Option("--no-export", "train and report only; write no model", flag_only=True),
    "report": Option("--report", "write the run's report as JSON", str, None, "FILE.json"),
    "strategy": Option(
        "--strategy", f"tf.distribute strategy: {', '.join(STRATEGIES)}", _choice(STRATEGIES),
        "auto", "NAME",
    ),
    "device": Option(
        "--device", f"{', '.join(DEVICES)}: auto uses a GPU when TensorFlow sees one",
        _choice(DEVICES), "auto", "NAME",
    ),
    "mixed_precision": Option(
        "--mixed-precision", "on a GPU, compute hidden layers in float16 (mixed_float16; "
        "outputs stay float32); ignored on a CPU", flag_only=True,
    ),
    "tensorboard": Option(
        "--tensorboard", "write TensorBoard event files to DIR: loss and metrics per epoch "
        "(train/, validation/), weight histograms per layer; a recipe that trains several "
        "models writes one sub-folder per variant. View with `tensorboard --logdir DIR`",
        str, None, "DIR",
    ),
    "restart": Option(
        "--restart", "start training afresh, discarding what an interrupted run of the same "
        "command saved (by default the same command resumes from the last epoch it saved in "
        "OUTPUT_DIR/.runs/)", flag_only=True,
    ),
}

TRAINING = (
    "epochs", "batch_size", "hidden", "optimizer", "learning_rate", "l2", "dropout", "patience",
    "seed", "data", "target", "drop", "categorical", "output_dir", "no_export", "report",
    "strategy", "device", "mixed_precision", "restart",
)
"""The options of a recipe that trains and exports one model."""


@dataclass
class RunConfig:
    """What one run was asked to do: the recipe's defaults overridden by the command line.

    Options a recipe does not take keep their global default here, so recipe
    code can read any field.
    """

    recipe: str
    epochs: int = 50
    batch_size: int | str = 32
    hidden: tuple = (16, 8)
    optimizer: str = "adam"
    learning_rate: float = 0.01
    l2: float = 0.0
    dropout: float = 0.0
    patience: int | None = None
    seed: int = 42
    data: str | None = None
    target: str | None = None
    drop: tuple = ()
    categorical: tuple = ()
    output_dir: str = "saved_models"
    no_export: bool = False
    report: str | None = None
    strategy: str = "auto"
    device: str = "auto"
    mixed_precision: bool = False
    restart: bool = False
    tensorboard: str | None = None
    debug: bool = False
    verbose: bool = True
    extra: dict = field(default_factory=dict)

    @property
    def export(self):
        """Whether the run writes a model version."""
        return not self.no_export


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are `UsageError`s in the package's message shape."""

    def error(self, message):
        if message.startswith("argument ") and ": " in message:
            flag, _, rest = message[len("argument "):].partition(": ")
            flag = flag.split("/")[-1]
            message = f"`{flag}` {rest}".replace("{flag}", flag)
        raise UsageError(f"{_printable(message)} See `{self.prog} --help`.")


def _printable(text):
    """`text` on one line: a newline or other control character typed in a value is escaped."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text))


def parser_for(recipe):
    """Returns the `argparse` parser for one recipe, with its options and defaults."""
    parser = _Parser(
        prog=f"python -m recipes.run {recipe.name}",
        description=f"{recipe.scenario}. {recipe.summary} Default data: {recipe.data}.",
        epilog=_lesson(recipe),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    for name in recipe.options:
        option = OPTIONS[name]
        default = recipe.defaults.get(name, option.default)
        if option.flag_only:
            parser.add_argument(option.flag, dest=name, action="store_true", help=option.help)
            continue
        if option.repeat:  # `parse` turns the list (or None) into a tuple
            parser.add_argument(option.flag, dest=name, type=option.read, action="append",
                                metavar=option.metavar, help=option.help)
            continue
        shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
        shown = "none" if shown is None else shown
        parser.add_argument(
            option.flag, dest=name, type=option.read, default=default, metavar=option.metavar,
            help=f"{option.help} (default: {shown})",
        )
    parser.add_argument(
        "--debug", action="store_true", help="show the traceback when the run fails"
    )
    return parser


def _lesson(recipe):
    """The recipe module's docstring, the lesson, for `--help`."""
    import importlib

    return (importlib.import_module(recipe.module).__doc__ or "").strip() or None


def parse(recipe, argv):
    """Parses `argv` (the words after the recipe name) into a `RunConfig`.

    Raises:
        UsageError: an unknown option or a bad value, naming the option.
    """
    namespace = parser_for(recipe).parse_args(argv)
    values = vars(namespace)
    for name in recipe.options:
        if OPTIONS[name].repeat:
            values[name] = tuple(values[name] or recipe.defaults.get(name, OPTIONS[name].default))
    known = {f.name for f in fields(RunConfig)}
    config = RunConfig(recipe=recipe.name, **{k: v for k, v in values.items() if k in known})
    if config.target is not None and config.data is None:
        raise UsageError(
            "`--target` names a column of your CSV file and needs `--data FILE.csv`. "
            "Add `--data`, or drop `--target` to train on the default data set."
        )
    if config.data is not None and config.target is None:
        raise UsageError(
            f"`--data {_printable(config.data)}` needs `--target COLUMN`, the column to predict. "
            "Add `--target` with one of the file's column names."
        )
    if config.drop and config.data is None:
        raise UsageError(
            "`--drop` leaves columns of your CSV file out and needs `--data FILE.csv` and "
            "`--target COLUMN`. Add them, or remove `--drop`."
        )
    if config.categorical and config.data is None:
        raise UsageError(
            "`--categorical` reads columns of your CSV file as categories and needs "
            "`--data FILE.csv` and `--target COLUMN`. Add them, or remove `--categorical`."
        )
    if config.target is not None and config.target in config.drop:
        raise UsageError(
            f"`--drop {_printable(config.target)}` names the target column, which cannot be "
            "left out. Drop feature columns only, or pick another `--target`."
        )
    return config
