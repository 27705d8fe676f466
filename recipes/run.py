"""The command line: `python -m recipes.run NAME [options]` and `--list`.

Three layers and nothing else: parse the command line, call the recipe through
the registry, print the result and return an exit status (0 done, 1 the run
failed, 2 a usage error, 130 Ctrl-C, 143 SIGTERM). Known errors are one
paragraph on stderr; `--debug` shows the traceback. `--list` and `--help`
never import TensorFlow.

Signals: SIGTERM (a scheduler's or `docker stop`'s) stops a run as Ctrl-C
does, at the end of the epoch under way, once its checkpoint is saved
(`models.training.checkpoints`), with one line saying how to resume. SIGXFSZ
is ignored, so a write past a file-size limit fails with an error (a full
disk, said as such) instead of killing the process.
"""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import sys
import time
from pathlib import Path

from models.training import devices, distribute
from recipes.core import options, registry, report
from recipes.core.errors import RunError, UsageError

USAGE = """\
usage: python -m recipes.run NAME [options]     run one recipe
       python -m recipes.run NAME --help        what it shows, and its options
       python -m recipes.run --list             every recipe
"""


def list_recipes(out=None):
    """Prints every recipe: name and scenario, then its default data and one line."""
    out = out or sys.stdout
    recipes = [registry.get(name) for name in registry.names()]
    width = max(len(r.name) for r in recipes) + 2
    for recipe in recipes:
        out.write(f"{recipe.name.ljust(width)}{recipe.scenario}\n")
        out.write(f"{'':{width}}data: {recipe.data}\n{'':{width}}{recipe.summary}\n")
    out.write(f"\n{len(recipes)} recipes. Run one with `python -m recipes.run NAME`; "
              "`NAME --help` explains it.\n")


def _save_outputs(config, result):
    """Writes the JSON report and the figures; returns the figure paths.

    In a multi-worker run only the chief saves figures; every worker writes
    the report it is asked for (its `export` is null but on the chief).
    """
    paths = []
    chief = distribute.is_chief(config.strategy)
    if config.report:
        report.write_json(result, config.report)
        where = Path(config.report)
        if chief:
            paths = report.save_figures(result.figures, where.parent, prefix=f"{where.stem}-")
    elif chief and not result.export:
        paths = report.save_figures(result.figures, Path(config.output_dir) / config.recipe / "figures")
    return paths


def run_recipe(name, argv, out=None, verbose=True):
    """Parses `argv` for recipe `name`, runs it, prints and saves its result.

    Args:
        name: the recipe's name.
        argv: the words after the name.
        out: where the result is printed. Defaults to `sys.stdout`.
        verbose: whether training prints progress (per epoch, per variant).
            Defaults to `True`.

    Returns:
        The recipe's `Result`.

    Raises:
        UsageError: an unknown recipe or a bad option (exit 2).
        RunError: the run failed (exit 1).
    """
    out = out or sys.stdout
    recipe = registry.get(name)
    config = options.parse(recipe, argv)
    config.verbose = verbose
    started = time.perf_counter()
    from recipes.core import workflow  # NumPy and the models package, not TensorFlow

    workflow.check_outputs(config)  # before TensorFlow starts: a bad folder fails at once
    if recipe.uses_tensorflow(config):  # before the recipe's clock starts
        devices.import_tensorflow()
        # What the import made (about 400,000 objects: modules, their functions) lives
        # as long as the process. Frozen, Python's full collections skip it: each one
        # otherwise walks it all, 0.2-0.3 s on 2 cores (one in a run of early-stopping).
        if not gc.get_freeze_count():  # once a process
            gc.freeze()

    result = recipe.run(workflow.Run(config))
    result.timing.setdefault("total_seconds", time.perf_counter() - started)
    figure_paths = _save_outputs(config, result)
    out.write(report.format_result(result) + "\n")
    if figure_paths:
        out.write("Figures: " + ", ".join(map(str, figure_paths)) + "\n")
    if config.report:
        out.write(f"Report: {config.report}\n")
    return result


def quiet_tensorflow_start():
    """The environment the CLI gives TensorFlow; takes effect if TensorFlow has not started yet.

    Quiet C++ start-up logs, and one thread per op: the notes' models are too small to
    split an op across threads, and the hand-offs cost more than the arithmetic (same
    numbers; 20-40% less time per epoch in scripts/bench.py). A value the user set is kept.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived: the run stops as for Ctrl-C, with exit status 143 (128 + 15)."""

    status = 128 + signal.SIGTERM
    what = "Terminated (SIGTERM)"


def _terminate(signum, frame):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # stopping already: more would cut the clean-up
    raise Terminated


@contextlib.contextmanager
def _signal_handlers():
    """SIGTERM raises `Terminated`, SIGXFSZ is ignored; the old handlers come back after.

    Set from the main thread only (Python's rule); elsewhere nothing changes.
    """
    wanted = {signal.SIGTERM: _terminate}
    if hasattr(signal, "SIGXFSZ"):  # POSIX
        wanted[signal.SIGXFSZ] = signal.SIG_IGN
    before = {}
    try:
        for signum, handler in wanted.items():
            if signal.getsignal(signum) == signal.SIG_IGN and signum == signal.SIGTERM:
                continue  # started to ignore SIGTERM (nohup-like): keep it so
            before[signum] = signal.signal(signum, handler)
    except ValueError:  # not the main thread
        pass
    try:
        yield
    finally:
        for signum, handler in before.items():
            signal.signal(signum, handler)


def main(argv=None):
    """Runs the command line; returns the exit status."""
    with _signal_handlers():
        return _main(argv)


def _main(argv):
    argv = list(sys.argv[1:] if argv is None else argv)
    quiet_tensorflow_start()
    if not argv or argv[0] in ("-h", "--help"):
        sys.stdout.write(USAGE)
        return 0 if argv else 2
    if argv[0] == "--list":
        list_recipes()
        return 0
    debug = "--debug" in argv
    try:
        run_recipe(argv[0], argv[1:])
    except SystemExit as stop:  # argparse's --help
        return stop.code or 0
    except KeyboardInterrupt as stop:  # Ctrl-C, or `Terminated`: the run said how to resume
        what = getattr(stop, "what", "Interrupted")
        print(getattr(stop, "resume", None) or f"{what}. The same command resumes from the last "
              "saved checkpoint, if any (add --restart to start afresh).", file=sys.stderr)
        return getattr(stop, "status", 130)
    except BrokenPipeError:  # `... | head` closed our output: stop quietly, as a pipe expects
        return 141
    except (UsageError, RunError) as error:
        if debug:
            raise
        print(f"error: {error}", file=sys.stderr)
        return error.exit_status
    except Exception as error:  # a bug, not a user mistake: say so, briefly
        if debug:
            raise
        print(
            f"error: the run failed with an unexpected {type(error).__name__}: {error} "
            "This is likely a bug in the recipe; re-run with --debug to see the traceback "
            "and report it.",
            file=sys.stderr,
        )
        return 1
    return 0


def leave(status):
    """Ends the process now with `status`, once stdout and stderr are flushed.

    Tearing down a process that imported TensorFlow takes about a second (Python's
    final garbage collection over TensorFlow's objects); everything a run wrote is
    closed by the time the CLI returns, so it leaves without that.
    """
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except OSError:  # a closed pipe (`... | head`): nothing more can be said
            pass
    os._exit(status)


if __name__ == "__main__":
    leave(main())
