"""`recipes.cook`'s keyword arguments as the command line they stand for.

`cook("optimizers", epochs=20, learning_rate=0.01)` runs what
`python -m recipes.run optimizers --epochs 20 --learning-rate 0.01` runs: each
keyword is an option's name (`recipes.core.options.OPTIONS`, underscores for
dashes), and its value is written out as the word the command line would take,
so the CLI's own parser checks it and a bad value gets the CLI's message. A
keyword the recipe does not take is refused here, naming it and the closest
names it does take. Standard library only.

Example:

>>> from recipes.core import keywords, registry
>>> keywords.to_argv(registry.get("multiclass-softmax"), {"epochs": 5, "hidden": (4, 4),
...                                                       "no_export": True})
['--epochs=5', '--hidden=4,4', '--no-export']
"""

from __future__ import annotations

import difflib
from pathlib import PurePath

from recipes.core.errors import UsageError
from recipes.core.options import OPTIONS


def to_argv(recipe, keywords):
    """The command-line words for `keywords` given to `recipe`; `None` leaves an option at its default.

    Args:
        recipe: a `recipes.core.registry.Recipe`.
        keywords: `{option name: value}`: numbers, strings, paths, `True`/`False`
            for switches (`no_export=True`), a tuple or list for `hidden`
            (`(16, 8)`) and for repeatable options (`drop=["id", "date"]`).

    Raises:
        UsageError: a keyword the recipe does not take, or a switch given a value
            other than `True` or `False`.
    """
    argv = []
    for name, value in keywords.items():
        if name not in recipe.options:
            close = difflib.get_close_matches(name, recipe.options, n=2, cutoff=0.6)
            hint = f" Did you mean {' or '.join(f'`{c}`' for c in close)}?" if close else ""
            raise UsageError(
                f"`{recipe.name}` takes no keyword `{name}`.{hint} Its keywords: "
                f"{', '.join(recipe.options)} (and `verbose`)."
            )
        if value is None:
            continue
        option = OPTIONS[name]
        if option.flag_only:
            if not isinstance(value, bool):
                raise UsageError(f"`{name}` is a switch: pass True or False. "
                                 f"Received: {name}={value!r}.")
            argv += [option.flag] if value else []
        elif option.repeat:
            values = [value] if isinstance(value, (str, PurePath)) else list(value)
            for item in values:
                argv.append(f"{option.flag}={_word(item)}")
        else:  # `--flag=value`: a value that starts with `-` stays a value
            argv.append(f"{option.flag}={_word(value)}")
    return argv


def _word(value):
    """`value` as the command line spells it: `(16, 8)` -> `16,8`, a path -> its text."""
    if isinstance(value, (tuple, list)):
        return ",".join(_word(v) for v in value)
    return str(value)
