"""The command line: `python -m recipes.book [--output DIR] [--only NAME,...] [--epochs-scale F]`.

Parses the options, builds the book (`recipes.book.site.build`), says where
it is. Exit status: 0 done; 2 a usage error (a bad option, an unknown recipe,
a folder that is not a book); 1 a recipe's run failed (its own message). No
traceback unless `--debug`.
"""

from __future__ import annotations

import argparse
import math
import os
import sys

from recipes.core.errors import RunError, UsageError

MAX_EPOCHS_SCALE = 10.0


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(f"{message[0].upper()}{message[1:]}. See `python -m recipes.book --help`.")


def _epochs_scale(text):
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (0 < value <= MAX_EPOCHS_SCALE):
        raise argparse.ArgumentTypeError(
            f"`--epochs-scale` must be a number in (0, {MAX_EPOCHS_SCALE:g}]. "
            f"Received: --epochs-scale={text}")
    return value


def parser():
    """The book's argument parser."""
    p = _Parser(
        prog="python -m recipes.book",
        description="Write the lesson book: a static web site with a page per recipe (the "
                    "lesson, its figures, its numbers, its Keras code). Open DIR/index.html "
                    "in a browser; no server or network needed.",
    )
    p.add_argument("--output", default="book", metavar="DIR",
                   help="the book's folder (default: book); a build reuses the runs already "
                        "there whose recipe and options are unchanged")
    p.add_argument("--only", metavar="NAME,...", type=lambda s: s.split(","),
                   help="only these recipes (comma-separated); default: all, in the notes' order")
    p.add_argument("--epochs-scale", type=_epochs_scale, default=1.0, metavar="F",
                   help="multiply each recipe's default epochs by F, e.g. 0.1 for a quick "
                        "look (default: 1)")
    p.add_argument("--rerun", action="store_true",
                   help="run every recipe again, even where DIR holds its run")
    p.add_argument("--debug", action="store_true", help="show the traceback when a build fails")
    return p


def main(argv=None):
    """Runs the command line; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")  # as `recipes.run` (see there)
    debug = "--debug" in argv
    try:
        args = parser().parse_args(argv)
        from recipes.book import site

        book = site.build(args.output, args.only, args.epochs_scale, rerun=args.rerun,
                          log=lambda line: print(line, flush=True))
    except SystemExit as stop:  # --help
        return stop.code or 0
    except KeyboardInterrupt:
        print("Interrupted: the runs that finished are kept; the same command goes on from "
              "there.", file=sys.stderr)
        return 130
    except (UsageError, RunError) as error:
        if debug:
            raise
        print(f"error: {error}", file=sys.stderr)
        return error.exit_status
    except OSError as error:  # a read-only or full disk under --output
        if debug:
            raise
        print(f"error: could not write the book: {error}. Pick a writable folder with "
              "`--output DIR`, or free some space, and run the same command again.",
              file=sys.stderr)
        return 1
    except Exception as error:  # a bug, not a user mistake: say so, briefly
        if debug:
            raise
        print(f"error: the build failed with an unexpected {type(error).__name__}: {error} "
              "This is likely a bug; re-run with --debug to see the traceback and report it.",
              file=sys.stderr)
        return 1
    print(f"Book: {len(book.names)} lessons in {book.folder}/ ({book.seconds:.1f} s). "
          f"Open {book.index.resolve().as_uri()}")
    return 0


if __name__ == "__main__":
    from recipes.run import leave

    leave(main())  # as `recipes.run`: without TensorFlow's slow teardown
