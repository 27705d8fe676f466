"""The user's own table: a CSV file read into a `models.data.Dataset`.

`read_csv(path, target, task=...)` reads a comma-separated file whose first row
names the columns. The target may be any column; the features are the other
columns in file order (less those in `drop`). Apache Arrow's CSV reader
(`pyarrow.csv`) parses the file block by block straight into a float32 array,
so a million rows load in seconds and Arrow never holds the whole table. A
file with something to explain is read again, whole and with inferred column
types, to name the column, the row and the fix. Checked before anything trains:

- the file exists, is UTF-8 text, has a header of distinct names and at least
  one data row, and names the target and every dropped column;
- every feature column is numeric, with no empty or missing (`NA`, `NaN`) cell
  and no infinite value (nor one beyond float32's ±3.4e38);
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

from models.data.bundled import DataError, Dataset

TASKS = ("binary", "multiclass", "regression", "positive")
"""What a caller can ask of the target; `positive` is a regression target >= 0."""

_CHUNK = 1 << 24  # bytes hashed (and checked as UTF-8) at a time
_BLOCK = 1 << 22  # bytes of CSV that Arrow parses per block
_NUMBER = r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$"
_SHOWN_COLUMNS = 30


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


def read_csv(path, target, *, task, drop=()):
    """Reads a CSV file with a header row into a `Dataset` for `task`.

    Args:
        path: the CSV file.
        target: the name of the column to predict.
        task: `"binary"`, `"multiclass"`, `"regression"` or `"positive"`
            (regression of a target >= 0).
        drop: column names to leave out. Defaults to `()`.

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
    if isinstance(drop, str):
        raise ValueError(f"`drop` must be a list of column names. Received: drop={drop!r}")
    drop = tuple(drop)
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
    _check_columns(name, columns, target, drop)
    sha256 = _sha256_of_utf8(path)
    features = [c for c in columns if c != target and c not in drop]
    if not features:
        why = "every other column is dropped" if drop else "it has no other column"
        raise DataError(
            f"{name} has no feature column besides the target {target!r}: {why}. Keep at "
            "least one numeric column as a feature."
        )
    try:
        x, column = _read_streaming(path, features, target, task)
    except _Unusual:  # read again, whole, to name the column, the row and the fix
        x, column = _read_checked(path, features, target, task)
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
        description=(
            f"CSV file {name}: {n_rows} rows, {len(features)} features, target "
            f"{target!r} ({kind})"
        ),
        sha256=sha256,
    )


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


def _check_columns(name, columns, target, drop):
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
    malformed row, no rows at all); `_read_checked` then finds and names it.
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


def _read_checked(path, features, target, task):
    """Features and target column of the whole table, read with inferred types and checked.

    Raises:
        DataError: what makes the file unusable, with the column, row and fix.
    """
    name = path.name
    table = _parse(path, features, target, task)
    if table.num_rows == 0:
        raise DataError(
            f"{name} has a header row but no data rows. Add the data below the header."
        )
    _check_missing(name, table, features, target)
    return _features(name, table, features), table.column(target)


def _parse(path, features, target, task):
    """The feature and target columns as an Arrow table (the target as text for classes)."""
    import pyarrow as pa
    from pyarrow import csv as pacsv

    classes = task in ("binary", "multiclass")
    convert = pacsv.ConvertOptions(
        include_columns=[*features, target],
        column_types={target: pa.string()} if classes else None,
        strings_can_be_null=True,
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


def _first(mask):
    """The 1-based data row of the first `True` in an Arrow boolean array, or 0."""
    import pyarrow.compute as pc

    index = pc.index(mask, True).as_py()
    return index + 1 if index >= 0 else 0


def _check_missing(name, table, features, target):
    for c in [*features, target]:
        column = table.column(c)
        if column.null_count:
            row = _first(column.is_null())
            what = "The target column" if c == target else "Column"
            fix = "" if c == target else f", or leave the column out with `--drop {shlex.quote(c)}`"
            raise DataError(
                f"{what} {c!r} of {name} has {column.null_count} empty or missing cell(s) "
                f"(blank, NA, NaN, null), the first at data row {row} (row 1 is the first "
                f"line below the header). Fill them in or remove those rows{fix}."
            )


def _is_numeric(arrow_type):
    import pyarrow.types as pt

    return pt.is_integer(arrow_type) or pt.is_floating(arrow_type) or pt.is_decimal(arrow_type)


def _first_non_number(column):
    """(1-based data row, text) of the first cell of `column` that is not a number."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        row = _first(pc.invert(pc.match_substring_regex(column, _NUMBER))) or 1
        return row, column[row - 1].as_py()
    return 1, str(column[0].as_py())


def _features(name, table, features):
    """The feature columns as a float32 `[rows, features]` array, checked finite."""
    for c in features:
        column = table.column(c)
        if not _is_numeric(column.type):
            row, text = _first_non_number(column)
            raise DataError(
                f"Feature column {c!r} of {name} is not numeric: data row {row} holds "
                f"{text!r}. The model takes numbers only: leave the column out with "
                f"`--drop {shlex.quote(c)}`, or turn it into numbers (e.g. one 0/1 column per "
                "category) before training."
            )
    x = np.empty((table.num_rows, len(features)), dtype=np.float32)
    start = 0
    with np.errstate(over="ignore"):  # beyond float32's range: caught as infinite below
        for batch in table.select(features).to_batches(max_chunksize=1 << 16):
            rows = slice(start, start + batch.num_rows)
            for j in range(len(features)):
                x[rows, j] = batch.column(j).to_numpy(zero_copy_only=False)
            start += batch.num_rows
    bad = ~np.isfinite(x)
    if bad.any():
        j = int(np.argmax(bad.any(axis=0)))
        c, row = features[j], int(np.argmax(bad[:, j])) + 1
        raise DataError(
            f"Feature column {c!r} of {name} holds an infinite value at data row {row} "
            f"({table.column(c)[row - 1].as_py()!r}; {int(bad[:, j].sum())} such cell(s)); "
            "values beyond float32's ±3.4e38 count as infinite. Replace them with finite "
            f"numbers, remove those rows, or leave the column out with "
            f"`--drop {shlex.quote(c)}`."
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

    encoded = pc.dictionary_encode(column).combine_chunks()
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
