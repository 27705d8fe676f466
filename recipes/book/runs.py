"""The lesson book's runs: each recipe run in-process, or the run already in the book reused.

A run lands in `BOOK/runs/NAME/`: the `--report` JSON (`report.json`), the
figures saved beside it (`report-FIGURE.png`), a thumbnail for the catalogue,
and `run.json`, what the page needs that the report does not hold (the
options and command line used, the printed tables and messages, the figures'
titles, what the run printed) under the run's `key`. The key is the recipe's
name, its options and the SHA-256 of its module's source: when a later build
asks for the same key, the run is reused instead of trained again. A run is
written in a staging folder and renamed into place when complete, so a
killed build leaves the previous run, or none, never half of one.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shlex
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from recipes.core import options as cli_options

REPORT_FILE = "report.json"
RUN_FILE = "run.json"
THUMBNAIL_FILE = "thumbnail.png"
THUMBNAIL_SIZE = (320, 240)
"""The largest a thumbnail is, in pixels (twice what the catalogue shows, for sharp screens)."""
FORMAT = 1
"""The layout of `run.json`; a run written in another layout is run again."""

_NOT_SHOWN = ("output_dir", "report")
"""Options the book sets for its own bookkeeping; they do not change what a run computes."""


@dataclass
class LessonRun:
    """One recipe's run as the book shows it.

    Args:
        recipe: the recipe's name.
        report: the report, as `--report` wrote it.
        options: `{option name: value}`, the options the run used.
        command: the command line that repeats the run.
        figures: `[{"name": "history.png", "file": "report-history.png", "title": "..."}]`.
        tables: the tables the run printed, `[{"title", "columns", "rows"}]`.
        messages: the lines the run printed before its tables.
        output: everything the run printed.
        seconds: wall seconds the run took in the book's process.
        ran_at: when it ran (UTC, ISO 8601).
        key: what must be unchanged for the run to be reused.
        thumbnail: the catalogue's thumbnail file, or `None` (a lesson that draws nothing).
        reused: whether this build reused it instead of running it.
    """

    recipe: str
    report: dict
    options: dict
    command: str
    figures: list = field(default_factory=list)
    tables: list = field(default_factory=list)
    messages: list = field(default_factory=list)
    output: str = ""
    seconds: float = 0.0
    ran_at: str = ""
    key: dict = field(default_factory=dict)
    thumbnail: str | None = None
    reused: bool = False


def arguments(recipe, epochs_scale=1.0):
    """The command-line words the book runs `recipe` with (before `--output-dir`, `--report`).

    `--epochs` is the recipe's default times `epochs_scale` (at least 1) for a
    recipe that takes it; `--no-export` wherever the recipe takes it (the book
    reports; `python -m recipes.run NAME` exports).

    Example:

    >>> from recipes.core import registry
    >>> arguments(registry.get("binary-sigmoid"), 0.1)
    ['--epochs', '6', '--no-export']
    >>> arguments(registry.get("single-neuron"), 0.1)
    []
    """
    words = []
    if "epochs" in recipe.options and epochs_scale != 1.0:
        default = recipe.defaults.get("epochs", cli_options.OPTIONS["epochs"].default)
        words += ["--epochs", str(max(1, round(default * epochs_scale)))]
    if "no_export" in recipe.options:
        words.append("--no-export")
    return words


def key_for(recipe, words):
    """What must be unchanged for a run of `recipe` with `words` to be reused."""
    config = cli_options.parse(recipe, words)
    return {
        "format": FORMAT,
        "recipe": recipe.name,
        "options": _options_used(recipe, config),
        "source_sha256": hashlib.sha256(_source_path(recipe).read_bytes()).hexdigest(),
    }


def _options_used(recipe, config):
    return _json_ready({name: getattr(config, name) for name in recipe.options
                        if name not in _NOT_SHOWN})


def _source_path(recipe):
    return Path(sys.modules[recipe.module].__file__)


def _json_ready(value):
    return json.loads(json.dumps(value, default=lambda o: o.tolist() if hasattr(o, "tolist")
                                 else str(o)))


def reusable(folder, key):
    """The `LessonRun` stored in `folder` under `key`, or `None` (absent, other key, incomplete)."""
    try:
        stored = json.loads((folder / RUN_FILE).read_text(encoding="utf-8"))
        report = json.loads((folder / REPORT_FILE).read_text(encoding="utf-8"))
        stored["report"] = report
        run = LessonRun(**stored)
    except (OSError, ValueError, TypeError):
        return None
    files = [f["file"] for f in run.figures] + ([run.thumbnail] if run.thumbnail else [])
    if run.key != key or not all((folder / name).is_file() for name in files):
        return None
    run.reused = True
    return run


def run(recipe, folder, epochs_scale=1.0, *, rerun=False):
    """Runs `recipe` for the book into `folder`, or reuses the run already there.

    Args:
        recipe: a `recipes.core.registry.Recipe`.
        folder: the run's folder, `BOOK/runs/NAME`.
        epochs_scale: the recipe's default epochs are multiplied by this.
            Defaults to `1.0`.
        rerun: run even when `folder` holds a run with the same key. Defaults
            to `False`.

    Returns:
        A `LessonRun`.

    Raises:
        recipes.core.errors.RunError: the recipe failed (its own message).
    """
    from recipes.run import run_recipe  # the CLI's own path: parse, run, save report and figures

    folder = Path(folder)
    words = arguments(recipe, epochs_scale)
    key = key_for(recipe, words)
    if not rerun:
        found = reusable(folder, key)
        if found is not None:
            return found
    staging = folder.with_name(f".{folder.name}.{os.getpid()}.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    printed = io.StringIO()
    started = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory(prefix="book-exports-") as scratch, \
                contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
            result = run_recipe(recipe.name, [*words, "--output-dir", scratch,
                                              "--report", str(staging / REPORT_FILE)],
                                out=printed)
        seconds = time.perf_counter() - started
        figures = [{"name": name, "file": f"{Path(REPORT_FILE).stem}-{name}",
                    "title": _figure_title(figure)} for name, figure in result.figures.items()]
        thumbnail = _thumbnail(staging, figures)
        lesson_run = LessonRun(
            recipe=recipe.name,
            report=json.loads((staging / REPORT_FILE).read_text(encoding="utf-8")),
            options=key["options"],
            command=shlex.join(["python", "-m", "recipes.run", recipe.name, *words]),
            figures=figures,
            tables=[_json_ready({"title": t.title, "columns": list(t.columns),
                                 "rows": [list(r) for r in t.rows]}) for t in result.tables],
            messages=list(result.messages),
            output=printed.getvalue(),
            seconds=seconds,
            ran_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            key=key,
            thumbnail=thumbnail,
        )
        stored = {k: v for k, v in asdict(lesson_run).items() if k not in ("report", "reused")}
        (staging / RUN_FILE).write_text(json.dumps(stored, indent=1) + "\n", encoding="utf-8")
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return lesson_run


def _figure_title(figure):
    """The figure's title (its suptitle, else its axes' titles), for the caption."""
    title = figure.get_suptitle() if hasattr(figure, "get_suptitle") else ""
    if not title:
        title = " · ".join(t for t in (axis.get_title() for axis in figure.axes) if t)
    return title.strip()


def _thumbnail(folder, figures):
    """Writes the catalogue's thumbnail of the lesson's own first figure; returns its name."""
    if not figures:
        return None
    from PIL import Image  # Pillow, which matplotlib draws with

    chosen = next((f for f in figures if f["name"] != "history.png"), figures[0])
    with Image.open(folder / chosen["file"]) as image:
        image.thumbnail(THUMBNAIL_SIZE)
        image.save(folder / THUMBNAIL_FILE, optimize=True)
    return THUMBNAIL_FILE
