"""Batch prediction: an exported model over a CSV file, written back with its predictions.

    python -m models.predict MODEL --data IN.csv [--output OUT.csv] [--model-dir saved_models]

MODEL is a model's name under `--model-dir` (its newest version) or a path to a
model or version folder. Every row of IN.csv is written to OUT.csv (standard
output when `--output` is left out) as it was read, every column kept (the
target too, if the file has it), followed by the prediction columns:

- classification: `label`, then `probability_CLASS` for each class, in the
  export's `class_names` order;
- regression: `prediction`.

A name already taken by an input column gets `_predicted` appended.

The file is read and written in blocks (`BLOCK_BYTES` of CSV at a time,
Apache Arrow's streaming reader), so a file of any length runs in bounded
memory. Cells are read as text and passed on unchanged; for the model, they
are stripped, a missing cell (empty, or a spelling in
`models.export.layout.MISSING` such as `NA`) is NaN or, for a categorical
column, the empty string, and a numeric column's cells are parsed as numbers.
The model runs as in `models.zoo` (ONNX Runtime when the export has
`model.onnx`: no TensorFlow import).

Checked before a byte is written: the model loads, and the file's header names
every feature column. A cell that cannot be used (text in a numeric column)
stops the run with its row and column named; OUT.csv is written under a
temporary name and renamed when complete, so it never holds half an answer.
Exit status: 0 done, 2 usage error, 1 a file or model that cannot be used.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

from models import zoo
from models.export.layout import INPUT, MISSING

BLOCK_BYTES = 1 << 22
"""Bytes of CSV parsed per block: about 60,000 rows of ten columns."""


class PredictError(Exception):
    """A file or model that cannot be used; the message names the cause and the fix."""


def prediction_columns(model, taken=()):
    """The names of the columns `predict_file` appends, made distinct from `taken`."""
    if model.task == "regression":
        names = ["prediction"]
    else:
        names = ["label", *(f"probability_{c}" for c in model.class_names)]
    taken = set(taken)
    return [f"{n}_predicted" if n in taken else n for n in names]


def predict_file(model, source, target, *, block_bytes=BLOCK_BYTES):
    """Predicts every row of the CSV file `source` and writes them, with predictions, to `target`.

    Args:
        model: a `zoo.Model`.
        source: the input CSV file (header row first).
        target: a writable binary file object for the output CSV.
        block_bytes: bytes of CSV parsed per block. Defaults to `BLOCK_BYTES`.

    Returns:
        The number of rows written.

    Raises:
        PredictError: a missing feature column, or a cell the model cannot take.
    """
    import pyarrow as pa
    from pyarrow import csv as pacsv

    header = _header(source)
    missing = [f for f in model.feature_names if f not in header]
    if missing:
        raise PredictError(
            f"{Path(source).name} lacks the column(s) {_listing(missing)} that {model.name} "
            f"takes (its features: {_listing(model.feature_names)}). Add them (an empty column "
            "counts as missing values), or check the header's spelling."
        )
    names = prediction_columns(model, header)
    reader = pacsv.open_csv(
        source, read_options=pacsv.ReadOptions(block_size=block_bytes, use_threads=True),
        convert_options=pacsv.ConvertOptions(
            column_types={c: pa.string() for c in header}, strings_can_be_null=False,
            quoted_strings_can_be_null=False),
    )
    readers = _column_readers(model)
    writer, start = None, 0
    try:
        for batch in reader:
            feed = _feed(model, readers, batch, start)
            outputs = model.run(feed)
            columns = list(batch.columns)
            if model.task == "regression":
                columns.append(pa.array(outputs["predictions"], pa.float32()))
            else:
                columns.append(pa.array(np.asarray(outputs["labels"], dtype=object), pa.string()))
                probabilities = outputs["probabilities"]
                columns += [pa.array(probabilities[:, j], pa.float32())
                            for j in range(probabilities.shape[1])]
            table = pa.Table.from_arrays(columns, names=[*header, *names])
            if writer is None:
                writer = pacsv.CSVWriter(target, table.schema,
                                         write_options=pacsv.WriteOptions(quoting_style="needed"))
            writer.write_table(table)
            start += batch.num_rows
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
        raise PredictError(
            f"{Path(source).name} could not be read as CSV near data row {start + 1}: {error}. "
            "Every row needs as many comma-separated cells as the header names."
        ) from None
    finally:
        if writer is not None:
            writer.close()
    if writer is None:  # a header and no rows: the header comes back, with the new columns
        target.write((",".join(_quoted([*header, *names])) + "\n").encode("utf-8"))
    return start


def _header(source):
    path = Path(source)
    if not path.is_file():
        raise PredictError(f"No file {str(path)!r}: check the path given to `--data`.")
    with open(path, encoding="utf-8-sig", newline="") as f:
        try:
            header = next(csv.reader(f), None)
        except UnicodeDecodeError:
            raise PredictError(f"{path.name} is not UTF-8 text: save it as UTF-8 CSV.") from None
    if not header:
        raise PredictError(f"{path.name} is empty: its first line must name the columns.")
    return header


def _quoted(names):
    return [f'"{n}"' if any(c in n for c in ',"\n') else n for n in names]


def _column_readers(model):
    """`(input name, file column, categorical)` for each input of the model."""
    if INPUT in model.signature_inputs:
        return [(INPUT, name, False) for name in model.feature_names]
    return [(f["input"], f["name"], f["kind"] == "categorical") for f in model.metadata["features"]]


def _feed(model, readers, batch, start):
    """One block's cells as the model's inputs (see the module docstring)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    missing_values = pa.array(MISSING)
    values = {}
    for _, column, categorical in readers:
        text = pc.utf8_trim_whitespace(batch.column(column))
        blank = pc.is_in(text, value_set=missing_values)
        if categorical:
            values[column] = pc.if_else(blank, "", text).to_numpy(zero_copy_only=False)
            continue
        try:
            number = pc.cast(pc.if_else(blank, pa.scalar(None, pa.string()), text), pa.float64())
        except pa.ArrowInvalid:
            raise PredictError(_not_a_number(model, column, text, blank, start)) from None
        x = number.to_numpy(zero_copy_only=False).astype(np.float32)
        if not model.missing_ok and np.isnan(x).any():
            row = start + int(np.argmax(np.isnan(x))) + 1
            raise PredictError(
                f"Data row {row}, column {column!r} is missing, and this export of {model.name} "
                "predates missing-value handling. Fill the cell in, or re-export the model."
            )
        values[column] = x
    if INPUT in model.signature_inputs:
        return {INPUT: np.column_stack([values[c] for c in model.feature_names])}
    return {name: values[column] for name, column, _ in readers}


def _not_a_number(model, column, text, blank, start):
    import pyarrow.compute as pc

    number = r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$|^[-+]?(inf|infinity|nan)$"
    bad = pc.and_(pc.invert(blank), pc.invert(pc.match_substring_regex(
        text, number, ignore_case=True)))
    index = pc.index(bad, True).as_py()
    return (f"Data row {start + index + 1}, column {column!r} holds {text[index].as_py()!r}, "
            f"which is not a number, but {model.name} takes {column!r} as a numeric column. "
            "Fix the cell, or leave it empty for a missing value.")


def _listing(items, limit=8):
    shown = ", ".join(repr(s) for s in items[:limit])
    return shown if len(items) <= limit else f"{shown}, ... ({len(items)} in all)"


def main(argv=None):
    """`python -m models.predict`: returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m models.predict",
        description="Predict every row of a CSV file with an exported model; write the rows "
                    "back with their prediction columns.",
        epilog="Missing cells: empty, or " + ", ".join(m for m in MISSING if m) + ".",
    )
    parser.add_argument("model", help="a model name under --model-dir, or a model or version folder")
    parser.add_argument("--data", required=True, metavar="IN.csv", help="the rows to predict")
    parser.add_argument("--output", metavar="OUT.csv",
                        help="where to write the rows and predictions (default: standard output)")
    parser.add_argument("--model-dir", default="saved_models", help="export root (default: saved_models)")
    parser.add_argument("--version", type=int, help="the version to use (default: the newest)")
    parser.add_argument("--backend", choices=zoo.BACKENDS, default="auto",
                        help="onnx, savedmodel, or auto (ONNX when the export has it)")
    args = parser.parse_args(argv)
    try:
        model = zoo.load(args.model, version=args.version, model_dir=args.model_dir,
                         backend=args.backend)
    except (zoo.ModelNotFoundError, zoo.ModelLoadError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    try:
        if args.output is None:
            rows = predict_file(model, args.data, sys.stdout.buffer)
        else:
            rows = _to_file(model, args.data, Path(args.output))
    except PredictError as error:
        print(f"error: {error} Nothing was written.", file=sys.stderr)
        return 1
    except OSError as error:
        print(f"error: cannot write {args.output}: {error.strerror or error}. Nothing was "
              "written; pick a writable --output.", file=sys.stderr)
        return 1
    print(f"Predicted {rows} row(s) with {model.name} v{model.version} ({model.backend})"
          + (f" into {args.output}" if args.output else ""), file=sys.stderr)
    return 0


def _to_file(model, source, output):
    """`predict_file` into `output`, written under a temporary name and renamed when whole."""
    folder = output.parent if str(output.parent) else Path(".")
    handle, temporary = tempfile.mkstemp(prefix=f".{output.name}.", suffix=".partial", dir=folder)
    try:
        with os.fdopen(handle, "wb") as target:
            rows = predict_file(model, source, target)
        os.replace(temporary, output)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return rows


if __name__ == "__main__":
    raise SystemExit(main())
