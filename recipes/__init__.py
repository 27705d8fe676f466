"""Recipes: the scenarios of the deep-learning notes as runnable, exportable Keras runs.

Run one with `python -m recipes.run NAME`; list them with `python -m recipes.run --list`.
From Python or a notebook, `recipes.cook(NAME, **options)` runs one in the current
process. Importing this package imports nothing heavy.
"""


def cook(name, *, verbose=False, **options):
    """Runs recipe `name` in this process, with the CLI's options as keywords; returns its result.

    `cook("optimizers", epochs=20, learning_rate=0.01)` is
    `python -m recipes.run optimizers --epochs 20 --learning-rate 0.01`: the same
    names (underscores for dashes: `batch_size`, `no_export=True`, `hidden=(16, 8)`),
    the same checks, the same training, export and report files, the same numbers for
    the same seed. TensorFlow is imported once, so many runs in one notebook pay its
    start-up once.

    Args:
        name: the recipe's name, e.g. `"optimizers"` (`python -m recipes.run --list`).
        verbose: print what the CLI prints (progress, tables). Defaults to `False`:
            nothing is printed.
        **options: the recipe's options (`python -m recipes.run NAME --help`);
            `None` keeps an option's default.

    Returns:
        A `recipes.core.report.Result`: `.metrics` (test metrics), `.details` (the
        lesson's numbers), `.history` (per-epoch logs, see `Result`), `.figures`
        (`{"name.png": matplotlib Figure}`: in Jupyter, a figure shows inline),
        `.export` (the version folder written, or `None`), `.timing`, `.tables`.

    Raises:
        ValueError: an unknown recipe (the closest names suggested), a keyword the
            recipe does not take (named), or a bad value: the CLI's message.
        recipes.core.errors.RunError: the run failed; the message names the cause.
    """
    import contextlib
    import io
    import sys

    from recipes.core import keywords, registry
    from recipes.core.errors import UsageError
    from recipes.run import quiet_tensorflow_start, run_recipe

    out = sys.stdout if verbose else io.StringIO()
    try:
        argv = keywords.to_argv(registry.get(name), options)
        quiet_tensorflow_start()
        with contextlib.redirect_stdout(out):
            return run_recipe(name, argv, out=out, verbose=verbose)
    except UsageError as error:
        raise ValueError(str(error)) from None
