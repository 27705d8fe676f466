"""The user's own table: a CSV file read into a `models.data.Dataset`.

`read_csv(path, target, task=...)` reads a comma-separated file whose first row
names the columns. The target may be any column; the features are the other
columns in file order (less those in `drop`).

Column kinds. A feature column is *numeric* when every cell that is not missing
reads as a number, else *categorical* (text, or `true`/`false`);
`categorical=[...]` (`--categorical`) reads a numeric-looking column, such as a
class coded 1/2/3, as categories. Cells are stripped of surrounding
whitespace. A cell is *missing* when it is empty or one of `MISSING`
(pandas' spellings: `NA`, `N/A`, `NaN`, `null`, `None`, `#N/A`, ...). Missing
feature cells are kept (numeric: NaN; the model imputes them, see
`models.data.encoding`); rows whose target is missing are left out, and the
description says how many.

A categorical column is held in `Dataset.x` as category codes (see
`models.data.Column`), so every table is one float32 array.

Apache Arrow's CSV reader (`pyarrow.csv`) does the parsing: a clean all-numeric
file is read block by block straight into a float32 array (a million rows in
seconds; Arrow never holds the whole table); any other file is read whole with
inferred column types. Checked before anything trains:

- the file exists, is UTF-8 text, has a header of distinct names and at least
  one data row, and names the target and every dropped or categorical column;
- no feature column is empty in every row, none holds an infinite value (nor
  one beyond float32's ±3.4e38), and no categorical column has more than
  `MAX_CATEGORIES` distinct values (an id or free text: drop it);
- the target fits the task the caller asks for: two classes for `binary`,
  three or more for `multiclass`, numbers for `regression`, numbers >= 0 for
  `positive` (a regression whose output is a ReLU).

A classification target may hold numbers or strings; it is read as text, so
class names are the file's own spelling, sorted (numerically when every class
reads as a number), and a row's class index is its name's position in that
list. A regression target becomes float32. `Dataset.sha256` is the sha256 of
the file's bytes and `Dataset.name` is the file name.

Example:

>>> from models.data import tables
>>> iris = tables.read_csv("iris.csv", "species", task="multiclass")  # doctest: +SKIP
>>> iris.class_names, iris.feature_names[:2]  # doctest: +SKIP
(['setosa', 'versicolor', 'virginica'], ['sepal_length', 'sepal_width'])
"""

from __future__ import annotations

import codecs
import csv
import difflib
import hashlib
import math
import shlex
from pathlib import Path

import numpy as np

from models.data.dataset import Column, DataError, Dataset
from models.export.layout import MISSING

TASKS = ("binary", "multiclass", "regression", "positive")
"""What a caller can ask of the target; `positive` is a regression target >= 0."""

_CHUNK = 1 << 24  # bytes hashed (and checked as UTF-8) at a time
_BLOCK = 1 << 22  # bytes of CSV that Arrow parses per block
_NUMBER = r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$"
_SHOWN_COLUMNS = 30


MAX_CATEGORIES = 1000
"""The most distinct values a categorical column may have. More is an id or free
text rather than a category (one-hot encoding it would give the network a
column per row); such a column is refused with the fix."""


class UnknownColumn(DataError):
    """`target` or a `drop` column that the file's header does not name."""


class TaskMismatch(DataError):
    """A target that does not fit the task asked for; `fits` names the task it does fit.

    Args:
        message: the cause, one paragraph.
        fits: the task (`TASKS`) these data fit.
    """

    def __init__(self, message, fits):
        super().__init__(message)
        self.fits = fits


def read_csv(path, target, *, task, drop=(), categorical=()):
    """Reads a CSV file with a header row into a `Dataset` for `task`.

    Args:
        path: the CSV file.
        target: the name of the column to predict.
        task: `"binary"`, `"multiclass"`, `"regression"` or `"positive"`
            (regression of a target >= 0).
        drop: column names to leave out. Defaults to `()`.
        categorical: feature columns to read as categories even where every
            cell is a number. Defaults to `()`.

    Returns:
        A `models.data.Dataset`; its `task` is `binary`, `multiclass` or
        `regression`.

    Raises:
        ValueError: `task` or `drop` out of range (before the file is opened).
        FileNotFoundError: no file at `path`.
        UnknownColumn: `target` or a `drop` column not in the header.
        TaskMismatch: a target that fits another task (see `TaskMismatch.fits`).
        DataError: a file that cannot be used as it is; the message names the
            column and row, and the fix.
    """
    if task not in TASKS:
        raise ValueError(f"`task` must be one of {', '.join(TASKS)}. Received: task={task!r}")
    for what, names in (("drop", drop), ("categorical", categorical)):
        if isinstance(names, str):
            raise ValueError(f"`{what}` must be a list of column names. Received: {what}={names!r}")
    drop, categorical = tuple(drop), tuple(categorical)
    path = Path(path)
    if not path.is_file():
        why = "is a folder, not a file" if path.is_dir() else "does not exist"
        raise FileNotFoundError(
            f"The data file {str(path)!r} {why}. Check the path given to `--data` "
            "(a relative path starts from the current folder)."
        )
    name = path.name
    if path.stat().st_size == 0:
        raise DataError(
            f"{name} is empty (0 bytes). Give `--data` a CSV file whose first row names "
            "the columns and whose next rows hold the data."
        )
    columns = _header(path)
    _check_columns(name, columns, target, drop, categorical)
    sha256 = _sha256_of_utf8(path)
    features = [c for c in columns if c != target and c not in drop]
    if not features:
        why = "every other column is dropped" if drop else "it has no other column"
        raise DataError(
            f"{name} has no feature column besides the target {target!r}: {why}. Keep at "
            "least one column as a feature."
        )
    try:
        if categorical:
            raise _Unusual
        x, column = _read_streaming(path, features, target, task)
        kinds, left_out = tuple(Column(c) for c in features), 0
    except _Unusual:  # read whole, with inferred types: text, gaps, or something to explain
        x, column, kinds, left_out = _read_table(path, features, target, task, categorical)
    n_rows = len(x)
    if task in ("binary", "multiclass"):
        y, class_names = _classes(name, column, target, task)
        kind = f"{len(class_names)} classes"
    else:
        y = _values(name, column, target, task)
        class_names = None
        kind = f"values {float(y.min()):g} to {float(y.max()):g}"
    return Dataset(
        name=name, x=x, y=y, feature_names=features, target=target,
        task="regression" if task == "positive" else task, class_names=class_names,
        description=_description(name, n_rows, kinds, x, target, kind, left_out),
        sha256=sha256, columns=kinds,
    )


def _description(name, n_rows, kinds, x, target, kind, left_out):
    """`CSV file NAME: N rows, K features (C categorical; M missing cells), target ...`."""
    n_categorical = sum(c.kind == "categorical" for c in kinds)
    n_missing = int(np.isnan(x).sum())
    extra = [f"{n_categorical} categorical"] if n_categorical else []
    extra += [f"{n_missing} missing cell(s)"] if n_missing else []
    shown = f" ({'; '.join(extra)})" if extra else ""
    gone = (f"; {left_out} row(s) without a target left out" if left_out else "")
    return (f"CSV file {name}: {n_rows} rows, {len(kinds)} features{shown}, target {target!r} "
            f"({kind}){gone}")


def _header(path):
    """The column names of the file's first line (a UTF-8 byte-order mark is skipped)."""
    with open(path, "rb") as f:
        first = f.readline()
    try:
        text = first.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise _not_utf8(path.name, error.object[error.start], line=1) from None
    row = next(csv.reader([text]), [])
    if not text.strip() or not row:
        raise DataError(
            f"{path.name} has no header row: its first line is blank. Put the column "
            "names on the first line, separated by commas."
        )
    return row


def _check_columns(name, columns, target, drop, categorical=()):
    blank = [i + 1 for i, c in enumerate(columns) if not c.strip()]
    if blank:
        raise DataError(
            f"Column {blank[0]} of {name} has no name in the header row. Give every column "
            "a name (a spreadsheet's unnamed index column is a common cause: delete it or "
            "name it)."
        )
    seen, twice = set(), []
    for c in columns:
        if c in seen and c not in twice:
            twice.append(c)
        seen.add(c)
    if twice:
        raise DataError(
            f"{name} names {'columns' if len(twice) > 1 else 'a column'} twice in its header: "
            f"{', '.join(repr(c) for c in twice)}. Rename the copies so every column has "
            "its own name."
        )
    listed = ", ".join(columns[:_SHOWN_COLUMNS])
    if len(columns) > _SHOWN_COLUMNS:
        listed += f", ... ({len(columns) - _SHOWN_COLUMNS} more)"
    hint = ""
    if len(columns) == 1 and any(s in columns[0] for s in ";\t|"):
        hint = (" The header reads as one column: the file seems to separate its cells with "
                "something other than commas; save it as comma-separated values.")
    if target not in columns:
        close = difflib.get_close_matches(target, columns, n=1, cutoff=0.6)
        guess = f" Did you mean {close[0]!r}?" if close else ""
        raise UnknownColumn(
            f"{name} has no column {target!r} to use as the target.{guess} Its columns are: "
            f"{listed}. Pass one of them to `--target` (names are case-sensitive).{hint}"
        )
    unknown = [c for c in drop if c not in columns]
    if unknown:
        raise UnknownColumn(
            f"`--drop` names {', '.join(repr(c) for c in unknown)}, which {name} does not "
            f"have. Its columns are: {listed}. Drop only columns the file has."
        )
    if target in drop:
        raise UnknownColumn(
            f"`--drop {shlex.quote(target)}` leaves out the target column. Drop feature "
            "columns only, or pick another `--target`."
        )
    unknown = [c for c in categorical if c not in columns]
    if unknown:
        raise UnknownColumn(
            f"`--categorical` names {', '.join(repr(c) for c in unknown)}, which {name} does "
            f"not have. Its columns are: {listed}. Name only columns the file has."
        )
    for c in categorical:
        if c == target or c in drop:
            why = "the target (its classes are read as text already)" if c == target else \
                "dropped with `--drop` too"
            raise UnknownColumn(
                f"`--categorical {shlex.quote(c)}` names a column that is {why}. Give "
                "`--categorical` feature columns only."
            )


def _not_utf8(name, byte, line):
    return DataError(
        f"{name} is not UTF-8 text: byte 0x{byte:02x} on line {line} is not valid UTF-8 "
        "(the file was likely saved as Latin-1 or Windows-1252). Save it as UTF-8 (in a "
        "spreadsheet: 'CSV UTF-8'; or `iconv -f latin1 -t utf-8`) and run again."
    )


def _sha256_of_utf8(path):
    """The sha256 of the file's bytes; checks, on the way, that they are UTF-8."""
    digest = hashlib.sha256()
    decoder = codecs.getincrementaldecoder("utf-8")()
    lines = 0
    with open(path, "rb") as f:
        while True:
            chunk = f.read(_CHUNK)
            final = not chunk
            digest.update(chunk)
            try:
                decoder.decode(chunk, final)
            except UnicodeDecodeError as error:
                # `error.object` is the decoder's held-back bytes plus this chunk.
                held = len(error.object) - len(chunk)
                before = chunk[:max(error.start - held, 0)]
                raise _not_utf8(path.name, error.object[error.start],
                                lines + before.count(b"\n") + 1) from None
            if final:
                return digest.hexdigest()
            lines += chunk.count(b"\n")


class _Unusual(Exception):
    """The streaming read met something to explain (or nothing at all)."""


def _read_streaming(path, features, target, task):
    """Features (float32) and the target column of a clean file, block by block.

    Every feature (and a regression target) is parsed straight to float64 and
    each block lands in float32, so Arrow holds a few blocks at a time rather
    than the whole table. Raises `_Unusual` at the first thing that needs a
    message (a cell that is not a number, an empty cell, an infinite value, a
    malformed row, no rows at all); `_read_table` then reads the file whole.
    """
    import pyarrow as pa
    from pyarrow import csv as pacsv

    classes = task in ("binary", "multiclass")
    types = {c: pa.float64() for c in features}
    types[target] = pa.string() if classes else pa.float64()
    convert = pacsv.ConvertOptions(
        include_columns=[*features, target], column_types=types, strings_can_be_null=True,
    )
    blocks, targets = [], []
    try:
        reader = pacsv.open_csv(
            path, read_options=pacsv.ReadOptions(use_threads=True, block_size=_BLOCK),
            convert_options=convert,
        )
        for batch in reader:
            if any(column.null_count for column in batch.columns):
                raise _Unusual
            block = np.empty((batch.num_rows, len(features)), dtype=np.float32)
            with np.errstate(over="ignore"):  # beyond float32's range: infinite, below
                for j in range(len(features)):
                    block[:, j] = batch.column(j).to_numpy()
            if not np.isfinite(block).all():
                raise _Unusual
            blocks.append(block)
            targets.append(batch.column(len(features)))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        raise _Unusual from None
    if not blocks:
        raise _Unusual
    x = blocks[0] if len(blocks) == 1 else np.concatenate(blocks)
    return x, pa.chunked_array(targets, type=types[target])


def _read_table(path, features, target, task, categorical):
    """Features, target column, `Column`s and the count of rows left out, from the whole table.

    Read with inferred column types; every feature becomes numeric (NaN for a
    missing cell) or categorical (codes, see `models.data.Column`); rows whose
    target is missing are left out.

    Raises:
        DataError: what makes the file unusable, with the column, row and fix.
    """
    import pyarrow.compute as pc

    name = path.name
    table = _parse(path, features, target, task)
    if table.num_rows == 0:
        raise DataError(
            f"{name} has a header row but no data rows. Add the data below the header."
        )
    column = table.column(target)
    if task in ("binary", "multiclass") or not _is_numeric(column.type):
        column = _as_number(_text(column)) if task not in ("binary", "multiclass") else _text(column)
    left_out = column.null_count
    if left_out == len(column):
        raise DataError(
            f"The target column {target!r} of {name} is empty (blank or {MISSING[1]}) in every "
            "row: there is nothing to learn from. Fill it in, or pick another `--target`."
        )
    x = np.empty((table.num_rows, len(features)), dtype=np.float32)
    kinds = []
    for j, c in enumerate(features):  # on every row, so a message's row number is the file's
        kind, values, categories = _feature(name, c, table.column(c), forced=c in categorical)
        x[:, j] = values
        kinds.append(Column(c, kind, categories))
    if left_out:
        keep = pc.is_valid(column)
        x, column = x[keep.to_numpy(zero_copy_only=False)], column.filter(keep)
    return x, column, tuple(kinds), left_out


def _parse(path, features, target, task):
    """The feature and target columns as an Arrow table (the target as text for classes)."""
    import pyarrow as pa
    from pyarrow import csv as pacsv

    classes = task in ("binary", "multiclass")
    convert = pacsv.ConvertOptions(
        include_columns=[*features, target],
        column_types={target: pa.string()} if classes else None,
        null_values=list(MISSING), strings_can_be_null=True,
    )
    try:
        return pacsv.read_csv(
            path, read_options=pacsv.ReadOptions(use_threads=True, block_size=_BLOCK),
            convert_options=convert,
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
        raise DataError(
            f"{path.name} could not be read as CSV: {error}. Every row needs as many "
            "comma-separated cells as the header names; quote cells that contain commas."
        ) from None


def _text(column):
    """`column` as text, each cell stripped, with the `MISSING` spellings as nulls."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        column = pc.cast(column, pa.string())
    column = pc.utf8_trim_whitespace(column)
    missing = pc.is_in(column, value_set=pa.array(MISSING))
    return pc.if_else(missing, pa.scalar(None, pa.string()), column)


def _as_number(text):
    """`text` as float64 when every cell that is not missing is a number, else `text`."""
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        return pc.cast(text, pa.float64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return text


def _feature(name, c, column, forced):
    """`(kind, float32 values, categories)` of one feature column, checked."""
    import pyarrow.compute as pc

    if column.null_count < len(column) and _is_numeric(column.type) and not forced:
        return "numeric", _finite_or_missing(name, c, column), None
    text = _text(column)
    if text.null_count == len(text):
        raise DataError(
            f"Feature column {c!r} of {name} is empty (blank or a missing-value spelling such "
            f"as NA) in every row, so it tells the model nothing. Leave it out with "
            f"`--drop {shlex.quote(c)}`, or fill it in."
        )
    if not forced:
        number = _as_number(text)
        if number is not text:
            return "numeric", _finite_or_missing(name, c, number), None
    encoded = pc.dictionary_encode(text).combine_chunks()
    categories = tuple(encoded.dictionary.to_pylist())
    if len(categories) > MAX_CATEGORIES:
        raise DataError(_too_many_categories(name, c, text, len(categories)))
    codes = encoded.indices.to_numpy(zero_copy_only=False)  # a missing cell: NaN
    return "categorical", codes.astype(np.float32), categories


def _too_many_categories(name, c, text, count):
    import pyarrow.compute as pc

    numbers = pc.sum(pc.match_substring_regex(text, _NUMBER)).as_py() or 0
    valid = len(text) - text.null_count
    why = "an id or free text rather than a category"
    if numbers >= valid / 2:
        row, cell = _first_non_number(text)
        why = (f"most of its cells are numbers, so it is probably numeric, read as text because "
               f"data row {row} holds {cell!r}: fix that cell (or leave it blank for missing)")
    return (
        f"Feature column {c!r} of {name} has {count:,} distinct text values, more than the "
        f"{MAX_CATEGORIES:,} a categorical column may have (one input per category): {why}. "
        f"Otherwise leave it out with `--drop {shlex.quote(c)}`."
    )


def _first(mask):
    """The 1-based data row of the first `True` in an Arrow boolean array, or 0."""
    import pyarrow.compute as pc

    index = pc.index(mask, True).as_py()
    return index + 1 if index >= 0 else 0


def _is_numeric(arrow_type):
    import pyarrow.types as pt

    return pt.is_integer(arrow_type) or pt.is_floating(arrow_type) or pt.is_decimal(arrow_type)


def _first_non_number(column):
    """(1-based data row, text) of the first cell of `column` that is not a number."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        number = pc.fill_null(pc.match_substring_regex(column, _NUMBER), True)
        row = _first(pc.invert(number)) or 1
        return row, column[row - 1].as_py()
    return 1, str(column[0].as_py())


def _finite_or_missing(name, c, column):
    """A numeric column as float32 (NaN for a missing cell), checked for infinite values."""
    import pyarrow as pa
    import pyarrow.compute as pc

    values = pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False)
    with np.errstate(over="ignore"):  # beyond float32's range: caught as infinite below
        x = values.astype(np.float32)
    bad = np.isinf(x)
    if bad.any():
        row = int(np.argmax(bad)) + 1
        raise DataError(
            f"Feature column {c!r} of {name} holds an infinite value at data row {row} "
            f"({values[row - 1]!r}; {int(bad.sum())} such cell(s)); values beyond float32's "
            "±3.4e38 count as infinite. Replace them with finite numbers, leave them blank "
            f"(missing), or leave the column out with `--drop {shlex.quote(c)}`."
        )
    return x


def _sort_key(text):
    try:
        number = float(text)
    except ValueError:
        number = math.nan
    return number, text


def _classes(name, column, target, task):
    """Class indices (int64) and sorted class names of a text target column."""
    import pyarrow.compute as pc

    encoded = pc.dictionary_encode(_text(column)).combine_chunks()
    found = encoded.dictionary.to_pylist()
    numeric = all(not math.isnan(_sort_key(t)[0]) for t in found)
    class_names = sorted(found, key=_sort_key) if numeric else sorted(found)
    shown = ", ".join(repr(c) for c in class_names[:10])
    if len(class_names) > 10:
        shown += f", ... ({len(class_names) - 10} more)"
    if len(class_names) == 1:
        raise DataError(
            f"The target {target!r} of {name} holds a single class, {class_names[0]!r}, in "
            "every row: there is nothing to tell apart. Add rows of the other class(es), "
            "or pick another `--target`."
        )
    if task == "binary" and len(class_names) != 2:
        raise TaskMismatch(
            f"This recipe trains a two-class (sigmoid) classifier, but the target "
            f"{target!r} of {name} holds {len(class_names)} classes: {shown}.",
            fits="multiclass",
        )
    if task == "multiclass" and len(class_names) < 3:
        raise TaskMismatch(
            f"This recipe trains a classifier for three or more classes (softmax), but the "
            f"target {target!r} of {name} holds 2 classes: {shown}.",
            fits="binary",
        )
    position = np.empty(len(found), dtype=np.int64)
    position[[found.index(c) for c in class_names]] = np.arange(len(class_names))
    y = position[encoded.indices.to_numpy(zero_copy_only=False)]
    return y, [str(c) for c in class_names]


def _values(name, column, target, task):
    """A numeric target column as float32 values, checked finite (and >= 0 for `positive`)."""
    if not _is_numeric(column.type):
        import pyarrow.compute as pc

        row, text = _first_non_number(column)
        n_distinct = len(pc.unique(column))
        raise TaskMismatch(
            f"This recipe fits a regression, which needs a numeric target, but the target "
            f"{target!r} of {name} is not numeric: data row {row} holds {text!r} "
            f"({n_distinct} distinct values). If the column holds numbers, fix that cell; "
            "if it names classes, train a classifier.",
            fits="binary" if n_distinct <= 2 else "multiclass",
        )
    values = column.to_numpy()
    with np.errstate(over="ignore"):
        y = values.astype(np.float32)
    bad = ~np.isfinite(y)
    if bad.any():
        row = int(np.argmax(bad)) + 1
        raise DataError(
            f"The target {target!r} of {name} holds an infinite value at data row {row} "
            f"({values[row - 1]!r}; {int(bad.sum())} such cell(s)); values beyond float32's "
            "±3.4e38 count as infinite. Replace them with finite numbers or remove those rows."
        )
    if task == "positive" and (y < 0).any():
        negative = y < 0
        raise TaskMismatch(
            f"This recipe's ReLU output predicts values >= 0 only, but the target {target!r} "
            f"of {name} has {int(negative.sum())} negative value(s) (the smallest "
            f"{float(y.min()):g}, the first at data row {int(np.argmax(negative)) + 1}).",
            fits="regression",
        )
    return y
