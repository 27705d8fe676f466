"""A run's numbers as tables for a page: the report's sections laid out, every value traceable.

`tables(section, values)` turns one section of the report (`metrics`,
`details`, `timing`) into `Table`s: the plain values as one name / value
table, and each group of like records (the baselines, the variants of a
comparison, the steps of a walk, a confusion matrix) as a grid of its own.
Every cell that shows a report value carries the value's place in the report
(`path`, a JSON list of keys) and the value itself (`value`, JSON), so a page
can be checked against its report, and shows it rounded by `text`.

Example:

>>> [t.title for t in tables("details", {"z": 2.6, "baselines": {
...     "majority": {"accuracy": 0.63}, "logistic": {"accuracy": 0.98}}})]
['details', 'details.baselines']
>>> text(2.5e-06), text(0.93086159), text(85002.0), text(None)
('2.5e-06', '0.9309', '85002', '—')
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field

_SHORT_LIST = 12
"""A list of at most this many numbers shows in one cell; a longer one gets a table."""


def text(value):
    """A report value as the page shows it: four decimals, small numbers in e-notation."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        if value == 0:
            return "0"
        if abs(value) < 1e-3:
            return f"{value:.2g}"
        if abs(value) >= 1e4 and value == int(value):
            return f"{int(value)}"
        if abs(value) >= 1e5:
            return f"{value:.4g}"
        return f"{value:.4f}"
    if isinstance(value, list):
        return "[" + ", ".join(text(v) for v in value) + "]"
    return str(value)


@dataclass
class Cell:
    """One cell: the text shown, and where a report value comes from (`None`: a label)."""

    text: str
    path: str | None = None
    value: str | None = None
    exact: str | None = None
    html: str | None = None  # `text` as markup, where it links somewhere


@dataclass
class Table:
    """A titled table of `Cell`s: `columns` names, `rows` of cells (the first cell labels the row)."""

    title: str
    columns: list
    rows: list = field(default_factory=list)


def value_cell(value, path):
    """The cell of one report value (a scalar or a short list of scalars) at `path`."""
    exact = json.dumps(value, ensure_ascii=False)
    shown = text(value)
    return Cell(text=shown, path=json.dumps(path, ensure_ascii=False), value=exact,
                exact=exact if exact != shown else None)


def _scalar(value):
    return value is None or isinstance(value, (bool, int, float, str))


def _short_list(value):
    return isinstance(value, list) and len(value) <= _SHORT_LIST and all(map(_scalar, value))


def _plain(value):
    return _scalar(value) or _short_list(value)


def _records(value):
    """Whether `value` is a dict of at least two dicts of plain values (a grid's rows)."""
    return (isinstance(value, dict) and len(value) >= 2
            and all(isinstance(v, dict) and v and all(map(_plain, v.values()))
                    for v in value.values()))


def _columns(rows):
    return list(dict.fromkeys(k for row in rows for k in row))


def _grid(title, records, path):
    columns = _columns(records.values())
    table = Table(title, ["", *columns])
    for name, record in records.items():
        row = [Cell(str(name))]
        row += [value_cell(record[c], [*path, name, c]) if c in record else Cell("")
                for c in columns]
        table.rows.append(row)
    return table


def _list_grid(title, items, path):
    """A list of records (`[{...}, ...]`) or of rows (`[[...], ...]`), one table row each."""
    if all(isinstance(item, dict) for item in items):
        columns = _columns(items)
        table = Table(title, ["#", *columns])
        for i, item in enumerate(items):
            table.rows.append([Cell(str(i)), *(value_cell(item[c], [*path, i, c]) if c in item
                                               else Cell("") for c in columns)])
        return table
    width = max(len(item) for item in items)
    table = Table(title, ["", *map(str, range(width))])
    for i, item in enumerate(items):
        table.rows.append([Cell(str(i)), *(value_cell(v, [*path, i, j]) for j, v in enumerate(item))])
    return table


def _gridable_list(value):
    return (isinstance(value, list) and value
            and (all(isinstance(v, dict) and all(map(_plain, v.values())) for v in value)
                 or all(isinstance(v, list) and all(map(_scalar, v)) for v in value)))


def tables(section, values):
    """The `Table`s of one report section (`section`: its key in the report)."""
    plain = Table(section, ["name", "value"])
    grids = []

    def visit(value, path, label):
        if _plain(value):
            plain.rows.append([Cell(label), value_cell(value, path)])
        elif _records(value):
            grids.append(_grid(f"{section}.{label}", value, path))
        elif _gridable_list(value):
            grids.append(_list_grid(f"{section}.{label}", value, path))
        elif isinstance(value, dict):
            for key, item in value.items():
                visit(item, [*path, key], f"{label}.{key}" if label else str(key))
        elif isinstance(value, list):
            for i, item in enumerate(value):
                visit(item, [*path, i], f"{label}[{i}]")

    for key, value in (values or {}).items():
        visit(value, [section, key], str(key))
    return ([plain] if plain.rows else []) + grids


def printed_table(table):
    """A table the run printed (`{"title", "columns", "rows"}`) as a `Table` of plain cells."""
    return Table(table["title"], [str(c) for c in table["columns"]],
                 [[Cell(text(v)) for v in row] for row in table["rows"]])


def lookup(report, path):
    """The value at `path` (a list of keys and indices) in `report`.

    >>> lookup({"details": {"walk": [{"w": 0.9}]}}, ["details", "walk", 0, "w"])
    0.9
    """
    value = report
    for key in path:
        value = value[key]
    return value


_MOST_IN_A_HEADLINE = 5


def headline(report, lesson):
    """The catalogue's number for a run: `(what, [(label, Cell), ...])`, at most five cells.

    The test accuracy (classification) or R² (regression) when the run has
    test metrics; else each variant's `test_accuracy` in `details`; else the
    first value the lesson names in `code` that `details` hold (a
    `{placeholder}` stands for every key at that place); else the first number
    in `details`; else `None`.

    >>> what, items = headline(
    ...     {"metrics": {}, "details": {"ratio": {"sigmoid": 2.5e-06, "relu": 1.3}}},
    ...     "The report's `details` hold `ratio.{activation}`.")
    >>> what, [(label, cell.text) for label, cell in items]
    ('ratio', [('sigmoid', '2.5e-06'), ('relu', '1.3000')])
    """
    metrics, details = report.get("metrics") or {}, report.get("details") or {}
    for key, what in (("accuracy", "test accuracy"), ("r2", "test R²")):
        if _number(metrics.get(key)):
            return what, [("", value_cell(metrics[key], ["metrics", key]))]
    variants = [path for path in _paths(details, depth=3) if path[-1] == "test_accuracy"
                and len(path) > 1 and _number(lookup(details, path))]
    if variants:
        return "test accuracy", [(str(path[-2]), value_cell(lookup(details, path),
                                                          ["details", *path]))
                                 for path in variants[:_MOST_IN_A_HEADLINE]]
    for name in re.findall(r"`([^`\s]+)`", lesson or ""):
        dotted = name.removeprefix("details.").strip(".")
        found = _named(details, dotted)
        if found:
            common = dotted.split(".{")[0]
            return common, [(label.removeprefix(common).strip("."), cell)
                            for label, cell in found[:_MOST_IN_A_HEADLINE]]
    for key, value in details.items():
        if _number(value):
            return str(key), [("", value_cell(value, ["details", key]))]
    return None


def _number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _paths(value, depth, path=()):
    """The paths of the leaves of nested dicts, at most `depth` keys deep."""
    if isinstance(value, dict) and depth > 0:
        for key, item in value.items():
            yield from _paths(item, depth - 1, (*path, key))
    elif path:
        yield path


def _named(details, dotted):
    """The numbers at a dotted name (`a.b`, `a.{any}.c`) in `details`, as headline items."""
    found = [((), details)]
    for part in dotted.split("."):
        step = []
        for path, value in found:
            if not isinstance(value, dict):
                continue
            if part.startswith("{") and part.endswith("}"):
                step += [((*path, k), v) for k, v in value.items()]
            elif part in value:
                step.append(((*path, part), value[part]))
        found = step
    return [(".".join(map(str, path)), value_cell(value, ["details", *path]))
            for path, value in found
            if _number(value)]
