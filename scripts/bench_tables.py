"""Mixed tables (text categories and gaps): load, one-row prediction, batch prediction.

    python scripts/bench_tables.py [--rows 1000000] [--repeats 3] [--json out.json]

Three measurements, each printed as a table row and written as JSON:

- `load`: `models.data.tables.read_csv` + `prepare` of a ROWS x 20 mixed CSV (14 numeric columns
  with 5% blanks, 6 text columns), against the same for a ROWS x 20 all-numeric CSV (median
  seconds, and the ratio);
- `one_row`: `zoo.load(...).predict_proba` of one `{column: value}` row of a 7-column mixed
  table through ONNX Runtime, in a fresh process that must not import TensorFlow (median
  microseconds over 2,000 calls, after warm-up);
- `batch`: `python -m models.predict` over ROWS rows of a 10-column mixed table (rows per
  second, peak resident memory of that process), against scikit-learn's pipeline
  (`SimpleImputer(add_indicator=True)` + `OneHotEncoder` + `LogisticRegression`, fitted on the
  same training rows) `predict_proba` on the same rows read by pandas (rows per second, the
  ratio); both answer every row.

The training runs that make the exports use a few epochs: the numbers are about speed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def write_mixed(path, rows, numeric, text, seed=0, target=True):
    """A CSV of `numeric` columns (5% blank), `text` columns of 3-12 categories, and a target."""
    import pyarrow as pa
    from pyarrow import csv as pacsv

    rng = np.random.default_rng(seed)
    columns, names = [], []
    signal = np.zeros(rows)
    for j in range(numeric):
        values = rng.normal(size=rows)
        signal += values * (j % 3 - 1)
        cells = pa.array(np.char.mod("%.4f", values).astype(object))
        blank = rng.random(rows) < 0.05
        columns.append(pa.array(np.where(blank, "", cells.to_numpy(zero_copy_only=False))))
        names.append(f"x{j}")
    for j in range(text):
        k = 3 + (j * 3) % 10
        codes = rng.integers(0, k, size=rows)
        signal += (codes == 0) * 1.5
        columns.append(pa.array(np.array([f"cat{c}" for c in range(k)], dtype=object)[codes]))
        names.append(f"t{j}")
    if target:
        columns.append(pa.array(np.where(signal + rng.normal(size=rows) > 0, "yes", "no")))
        names.append("label")
    pacsv.write_csv(pa.Table.from_arrays(columns, names=names), path,
                    pacsv.WriteOptions(quoting_style="needed"))
    return path


def write_numeric(path, rows, width, seed=0):
    import pyarrow as pa
    from pyarrow import csv as pacsv

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, width)).astype(np.float32)
    label = np.where(x[:, 0] > 0, "yes", "no")
    arrays = [pa.array(x[:, j]) for j in range(width)] + [pa.array(label)]
    pacsv.write_csv(pa.Table.from_arrays(arrays, names=[*(f"x{j}" for j in range(width)), "label"]),
                    path)
    return path


def _load(path):
    from models.data import tables
    from models.data.prepared import prepare

    started = time.perf_counter()
    dataset = tables.read_csv(path, "label", task="binary")
    data = prepare(dataset, seed=0)
    data.x_train  # noqa: B018  the encoding of the training rows is part of preparing
    return time.perf_counter() - started


def bench_load(workdir, rows, repeats):
    mixed = write_mixed(workdir / "mixed20.csv", rows, numeric=14, text=6)
    numeric = write_numeric(workdir / "numeric20.csv", rows, width=20)
    times = {"mixed": [], "numeric": []}
    for _ in range(repeats):  # alternating, so both see the same machine
        times["numeric"].append(_load(numeric))
        times["mixed"].append(_load(mixed))
    out = {k: statistics.median(v) for k, v in times.items()}
    out["ratio"] = out["mixed"] / out["numeric"]
    return out


def _train(csv_path, root):
    done = subprocess.run(
        [sys.executable, "-m", "recipes.run", "binary-sigmoid", "--data", str(csv_path),
         "--target", "label", "--epochs", "3", "--output-dir", str(root)],
        cwd=REPO, capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    if done.returncode:
        raise SystemExit(done.stderr[-2000:])
    return root / "binary-sigmoid" / "1"


_ONE_ROW = r"""
import json, sys, time, statistics
from models import zoo
model = zoo.load(sys.argv[1])
row = json.loads(sys.argv[2])
for _ in range(200):
    model.predict_proba([row])
times = []
for _ in range(20):
    started = time.perf_counter()
    for _ in range(100):
        model.predict_proba([row])
    times.append((time.perf_counter() - started) / 100 * 1e6)
print(json.dumps({"microseconds": statistics.median(times), "backend": model.backend,
                  "tensorflow_imported": "tensorflow" in sys.modules}))
"""


def bench_one_row(workdir):
    table = write_mixed(workdir / "mixed7.csv", 5000, numeric=4, text=3, seed=1)
    folder = _train(table, workdir / "one_row")
    row = {"x0": 0.5, "x1": None, "x2": -1.2, "x3": 0.1, "t0": "cat1", "t1": "cat4", "t2": ""}
    done = subprocess.run([sys.executable, "-c", _ONE_ROW, str(folder), json.dumps(row)], cwd=REPO,
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def bench_batch(workdir, rows):
    import pandas

    from models import zoo
    from models.data import tables
    from models.data.prepared import prepare
    from models.lessons import categorical

    train = write_mixed(workdir / "train10.csv", 20_000, numeric=6, text=4, seed=2)
    folder = _train(train, workdir / "batch")
    source = write_mixed(workdir / "predict10.csv", rows, numeric=6, text=4, seed=3)
    target = workdir / "predicted.csv"
    code = ("import runpy, sys; sys.argv = ['models.predict', *sys.argv[1:]]\n"
            "try:\n    runpy.run_module('models.predict', run_name='__main__')\n"
            "except SystemExit as e:\n    status = e.code\n"
            # VmHWM: the child's own peak (ru_maxrss carries the parent's across exec)
            "peak = [l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')]\n"
            "print('PEAK_KB', peak[0], file=sys.stderr)\n"
            "sys.exit(status)")
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code, str(folder), "--data", str(source),
                           "--output", str(target)], cwd=REPO, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode:
        raise SystemExit(done.stderr[-2000:])
    peak_mb = int(done.stderr.split("PEAK_KB")[1].split()[0]) / 1024
    with open(target, "rb") as f:
        rows_out = sum(1 for _ in f) - 1

    data = prepare(tables.read_csv(train, "label", task="binary"), seed=0)
    pipeline = categorical.pipeline(data.dataset).fit(
        categorical.raw_frame(data.dataset, data.split.x_train), data.split.y_train)
    started = time.perf_counter()
    frame = pandas.read_csv(source, keep_default_na=True)
    frame = frame.drop(columns=["label"]).astype(object).where(frame.notna(), None)
    values = frame.to_numpy()
    for j, column in enumerate(data.dataset.columns):  # numbers as float (NaN for gaps)
        if column.kind == "numeric":
            values[:, j] = pandas.to_numeric(frame.iloc[:, j]).to_numpy(dtype=float)
    pipeline.predict_proba(values)
    sklearn_seconds = time.perf_counter() - started
    model = zoo.load(folder)
    return {
        "rows": rows, "rows_out": rows_out, "seconds": seconds, "rows_per_second": rows / seconds,
        "peak_rss_mb": peak_mb, "backend": model.backend,
        "scikit_learn_seconds": sklearn_seconds, "scikit_learn_rows_per_second": rows / sklearn_seconds,
        "ratio": (rows / seconds) / (rows / sklearn_seconds),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        results = {"load": bench_load(workdir, args.rows, args.repeats),
                   "one_row": bench_one_row(workdir),
                   "batch": bench_batch(workdir, args.rows)}
    load, one, batch = results["load"], results["one_row"], results["batch"]
    print(f"{'measurement':<46} {'ours':>12} {'reference':>12} {'ratio':>7}")
    print(f"{f'read + prepare {args.rows:,} x 20 (s)':<46} {load['mixed']:>12.2f} "
          f"{load['numeric']:>12.2f} {load['ratio']:>7.2f}   (reference: all-numeric)")
    print(f"{'one-row predict_proba, 7 mixed columns (us)':<46} {one['microseconds']:>12.1f} "
          f"{'':>12} {'':>7}   ({one['backend']}, TensorFlow imported: {one['tensorflow_imported']})")
    print(f"{f'models.predict {args.rows:,} x 10 (rows/s)':<46} {batch['rows_per_second']:>12,.0f} "
          f"{batch['scikit_learn_rows_per_second']:>12,.0f} {batch['ratio']:>7.2f}   "
          f"(reference: scikit-learn pipeline; peak {batch['peak_rss_mb']:.0f} MB, "
          f"{batch['rows_out']:,} rows out)")
    print(json.dumps(results, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
