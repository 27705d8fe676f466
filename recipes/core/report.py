"""What a run reports: the `Result` a recipe returns, as a table and as JSON.

A recipe returns a `Result`; the CLI prints it as readable tables and, with
`--report FILE.json`, writes

    {"recipe": NAME, "metrics": {...}, "details": {...}, "timing": {...}, "export": PATH-or-null}

Lesson recipes put their numbers under `details` (each recipe's docstring names
the keys). Figures are matplotlib figures keyed by file name; `save_figures`
writes them as PNG, each rendered once however many folders it goes to (the
export's and the report's). Standard library only at import time.
"""

from __future__ import annotations

import io
import json
import math
import os
import weakref
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Table:
    """A table to print: a title, column names and rows of values."""

    title: str
    columns: list
    rows: list


@dataclass
class Result:
    """The outcome of one recipe run.

    Args:
        recipe: the recipe's name.
        metrics: held-out test metrics of the model the run trained (or exported).
        details: the lesson's own numbers, JSON-ready.
        timing: seconds spent, e.g. `train_seconds`, `export_seconds`, `total_seconds`.
        export: the version folder written, or `None`.
        tables: extra tables to print, after the metrics.
        figures: `{"name.png": matplotlib Figure}`; the CLI saves them.
        messages: lines printed before the tables (device used, data, notes).
        history: the per-epoch logs (`{"loss": [...], "val_loss": [...], ...}`) of the
            model the run exported or scored; for a lesson that only compares
            variants, `{variant: logs}`; `{}` where nothing trained. Not in the
            JSON report (the export's `history.csv` holds them).
    """

    recipe: str
    metrics: dict = field(default_factory=dict)
    details: dict = field(default_factory=dict)
    timing: dict = field(default_factory=dict)
    export: str | None = None
    tables: list = field(default_factory=list)
    figures: dict = field(default_factory=dict)
    messages: list = field(default_factory=list)
    history: dict = field(default_factory=dict)

    def __repr__(self):
        figures = ", ".join(self.figures) or "none"
        return (f"Result(recipe={self.recipe!r}, metrics={_plain(self.metrics)!r}, "
                f"details: {', '.join(map(str, self.details)) or 'none'}; figures: {figures}; "
                f"export={self.export!r})")

    def to_dict(self):
        """The report as a JSON-ready dict: `recipe`, `metrics`, `details`, `timing`, `export`."""
        return _plain(
            {
                "recipe": self.recipe,
                "metrics": self.metrics,
                "details": self.details,
                "timing": self.timing,
                "export": self.export,
            }
        )


def _plain(value):
    """Turns NumPy scalars and arrays, tuples and paths into plain JSON values."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "tolist"):  # NumPy scalar or array
        return _plain(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _cell(value):
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 1e5 else f"{value:.4g}"
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        return _cell(value.item())
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_cell(v) for v in value) + "]"
    return str(value)


def format_table(table):
    """Returns `table` as aligned plain text under its title."""
    rows = [[_cell(v) for v in row] for row in table.rows]
    columns = [str(c) for c in table.columns]
    widths = [max(len(c), *(len(r[i]) for r in rows)) if rows else len(c)
              for i, c in enumerate(columns)]
    lines = [table.title, "  ".join(c.ljust(w) for c, w in zip(columns, widths)).rstrip(),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in rows]
    return "\n".join(lines)


def format_result(result):
    """Returns the whole result as readable text: messages, metrics, tables, timing, export."""
    parts = []
    if result.messages:
        parts.append("\n".join(result.messages))
    if result.metrics:
        rows = [[k, v] for k, v in result.metrics.items() if not isinstance(v, (list, dict))]
        parts.append(format_table(Table(f"{result.recipe}: test metrics", ["metric", "value"], rows)))
    parts += [format_table(t) for t in result.tables]
    if result.timing:
        parts.append("Timing: " + ", ".join(f"{k} {v:.2f}" for k, v in result.timing.items()))
    parts.append(f"Export: {result.export}" if result.export else "Export: none")
    return "\n\n".join(parts)


def write_json(result, path):
    """Writes the report to `path` whole: to a temporary file first, then renamed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_whole(path, (json.dumps(result.to_dict(), indent=2) + "\n").encode("utf-8"))
    return path


def _write_whole(path, data):
    """Writes `data` to a temporary file beside `path`, then renames it into place."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


_rendered = weakref.WeakKeyDictionary()
"""Figure -> its PNG bytes, for a figure saved to a second folder."""


def png(figure):
    """`figure` as PNG bytes at 100 dpi, rendered on the first call only.

    The page is the figure's own size: every figure in `recipes.core.plots`
    is laid out by `tight_layout` already. Cropping it again
    (`bbox_inches="tight"`) costs a second layout pass of every text, 0.1 to
    0.35 s per recipe on 2 cores, for 5 pixels of margin.
    """
    data = _rendered.get(figure)
    if data is None:
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=100)
        data = _rendered[figure] = buffer.getvalue()
    return data


def save_figures(figures, directory, prefix=""):
    """Saves `{"name.png": Figure}` as PNG files in `directory`; returns their paths.

    A figure saved before (beside the export, say) is not drawn again: its
    PNG bytes are kept (`png`). Each file is written whole (a temporary
    file, renamed); each figure is closed in pyplot once saved.
    """
    if not figures:
        return []
    import matplotlib.pyplot as plt

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, figure in figures.items():
        path = directory / f"{prefix}{name}"
        _write_whole(path, png(figure))
        paths.append(path)
    for figure in figures.values():
        plt.close(figure)
    return paths
