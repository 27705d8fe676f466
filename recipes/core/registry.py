"""The recipe registry: register by decorator, list sorted, look up by name.

Every module at the top of the `recipes` package is a recipe module, bar the
entry points `run` (the CLI) and `book` (the lesson book); the machinery lives
in the sub-package `recipes.core`. `discover()` imports
them, and each registers its entry point with `@register(...)`. Recipe modules
import nothing heavy at import time, so listing recipes never imports
TensorFlow; their work happens inside the registered function.

Example:

>>> from recipes.core import registry
>>> "binary-sigmoid" in registry.names()
True
>>> registry.get("binary-sigmod")
Traceback (most recent call last):
...
recipes.core.registry.UnknownRecipe: Unknown recipe 'binary-sigmod'. Did you mean 'binary-sigmoid'? ...
"""

from __future__ import annotations

import difflib
import fnmatch
import importlib
import pkgutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from recipes.core.errors import UsageError

ENTRY_POINTS = frozenset({"run", "book", "__main__"})
"""Modules of `recipes` that are not recipes."""

ALWAYS = ("seed", "output_dir", "report")
"""Options every recipe takes, whether or not it names them."""

TRAINED = ("tensorboard",)
"""Options every recipe that trains (it takes `epochs`) takes, whether or not it names them."""


class UnknownRecipe(UsageError):
    """An unknown recipe name (exit status 2), with the closest names suggested."""


@dataclass(frozen=True)
class Recipe:
    """One registered recipe.

    Args:
        name: the CLI name, e.g. `"binary-sigmoid"`.
        run: the function the CLI calls with a `recipes.core.workflow.Run`; returns a `Result`.
        scenario: which lesson of the notes it turns into code.
        data: the default data set, in words.
        summary: one line for `--list`.
        options: the names of the common options it accepts (see `recipes.core.options`).
        defaults: its defaults for those options, e.g. `{"epochs": 60}`.
        module: the module that holds it; its docstring is the lesson.
        tensorflow: whether it uses TensorFlow whatever the options (to train).
    """

    name: str
    run: Callable
    scenario: str
    data: str
    summary: str
    options: tuple[str, ...]
    defaults: dict = field(default_factory=dict)
    module: str = ""
    tensorflow: bool = True

    def uses_tensorflow(self, config):
        """Whether a run with `config` uses TensorFlow: to train, or to export (`--no-export` off)."""
        return self.tensorflow or ("no_export" in self.options and config.export)


_RECIPES: dict[str, Recipe] = {}
_discovered = False


def register(name, *, scenario, data, summary, options, defaults=None, tensorflow=True):
    """Registers the decorated function as recipe `name`.

    Args:
        name: the recipe's CLI name (lower case, words joined by `-`).
        scenario: the lesson of the notes it shows.
        data: its default data set, in words.
        summary: one line for `--list`.
        options: the common options it accepts, by name (`recipes.core.options.OPTIONS`);
            `ALWAYS` (`--seed`, `--output-dir`, `--report`) are added, and to a
            recipe that trains (it takes `epochs`) `TRAINED` (`--tensorboard`).
        defaults: its own defaults for those options. Defaults to `{}`.
        tensorflow: whether it uses TensorFlow to train. The CLI then imports it
            first, quietly, before the recipe's clock starts; it does so too for
            a run that exports (`--no-export` off), since every export writes a
            SavedModel. Defaults to `True`.

    Returns:
        The decorator; it returns the function unchanged.

    Raises:
        ValueError: a name registered twice, or an option or default that does
            not exist.
    """
    from recipes.core.options import OPTIONS  # standard library only

    if name in _RECIPES:
        raise ValueError(
            f"Recipe '{name}' is registered twice: by {_RECIPES[name].module} and again. "
            "Give one of them another name."
        )
    options = tuple(dict.fromkeys([*options, *ALWAYS, *(TRAINED if "epochs" in options else ())]))
    unknown = [o for o in options if o not in OPTIONS]
    defaults = dict(defaults or {})
    unknown += [d for d in defaults if d not in options]
    if unknown:
        raise ValueError(
            f"Recipe '{name}' names options that do not exist or that it does not take: "
            f"{', '.join(sorted(set(unknown)))}. Known options: {', '.join(OPTIONS)}."
        )

    def decorator(fn):
        _RECIPES[name] = Recipe(
            name=name,
            run=fn,
            scenario=scenario,
            data=data,
            summary=summary,
            options=tuple(options),
            defaults=defaults,
            module=fn.__module__,
            tensorflow=tensorflow,
        )
        return fn

    return decorator


def discover():
    """Imports every recipe module once, so that all recipes are registered."""
    global _discovered
    if _discovered:
        return
    package = Path(__file__).resolve().parents[1]  # recipes/, found without importing it

    for module in pkgutil.iter_modules([str(package)]):
        if module.ispkg or module.name in ENTRY_POINTS:
            continue
        importlib.import_module(f"recipes.{module.name}")
    _discovered = True


def names(pattern="*"):
    """Returns the registered recipe names matching `pattern` (fnmatch), sorted."""
    discover()
    return sorted(n for n in _RECIPES if fnmatch.fnmatch(n, pattern))


def get(name):
    """Returns the `Recipe` called `name`.

    Raises:
        UnknownRecipe: no such recipe; the message suggests the closest names.
    """
    discover()
    if name in _RECIPES:
        return _RECIPES[name]
    close = difflib.get_close_matches(name, list(_RECIPES), n=3, cutoff=0.5)
    if close:  # only the names nearly as close as the closest: a typo has one fix
        best = difflib.SequenceMatcher(None, name, close[0]).ratio()
        close = [c for c in close if difflib.SequenceMatcher(None, name, c).ratio() >= best - 0.15]
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    raise UnknownRecipe(
        f"Unknown recipe '{name}'.{hint} Run `python -m recipes.run --list` to see all "
        f"{len(_RECIPES)} recipes."
    )


NOTES_ORDER = (
    "linear-unit", "logistic-unit", "single-neuron", "forward-pass", "multiclass-softmax",
    "gradient-descent", "vanishing-gradient", "optimizers", "activations", "binary-sigmoid",
    "relu-regression", "leaky-relu-regression", "l2-penalty", "decision-tree-entropy", "dropout",
    "early-stopping", "regularization", "loss-functions", "categorical-features",
)
"""Recipe names in the order the notes teach them (the lesson book's order): linear and
logistic regression, the neuron, the MLP, gradient descent and its troubles, the optimizers,
the activations and the output table, regularization (the notes put the decision tree between
the L2 penalty and dropout), the loss table; then what the notes leave out."""


def in_notes_order():
    """Returns every registered recipe name in the notes' order (`NOTES_ORDER`).

    A registered recipe that `NOTES_ORDER` does not list comes after those it
    lists, by name, so a new recipe is never left out.

    Example:

    >>> from recipes.core import registry
    >>> names = registry.in_notes_order()
    >>> names.index("single-neuron") < names.index("optimizers") < names.index("dropout")
    True
    >>> sorted(names) == registry.names()
    True
    """
    rank = {name: i for i, name in enumerate(NOTES_ORDER)}
    return sorted(names(), key=lambda name: (rank.get(name, len(rank)), name))
