"""Benchmark `--data FILE.csv`: load time and a whole run's time and peak memory.

Writes a CSV of ROWS x COLUMNS random numeric features plus a two-class
`label` column into a temporary folder, then measures, each in a fresh
process so that peak memory is its own:

- `load`: `models.data.tables.read_csv(..., task="binary")` alone (seconds, peak RSS);
- `run`: `python -m recipes.run RECIPE --data FILE --target label --epochs 1`
  with export, as a user types it (seconds, peak RSS, test accuracy);
- `pandas`: `pandas.read_csv` of the same file, for comparison (only when
  pandas is installed; it is not a dependency).

Targets: 1,000,000 rows x 20 columns load in under 10 s, and the
whole run stays under 2 GB of peak memory. Prints a table, then the numbers
as JSON. Run by hand:

    python scripts/bench_csv.py                      # 1,000,000 x 20, binary-sigmoid
    python scripts/bench_csv.py --rows 100000 --repeat 3
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def peak_rss_mb():
    """This process's own peak resident memory in MiB.

    Linux: `VmHWM` of /proc/self/status. `ru_maxrss` is not used there: Linux
    carries it from the parent across exec, so a child started by a big parent
    would report the parent's peak. Elsewhere (macOS, bytes): `ru_maxrss`.
    """
    try:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024
    except (OSError, StopIteration):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def cpu_seconds():
    """CPU time (user + system, all threads) this process has used so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def write_table(path, rows, columns, seed=0):
    """Writes the benchmark CSV: `x0..x{columns-1}` normal floats and a 0/1 `label`."""
    import numpy as np
    import pyarrow as pa
    from pyarrow import csv as pacsv

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, columns)).astype(np.float32)
    label = (x[:, 0] + x[:, 1] ** 2 > 1).astype(np.int64)
    table = pa.table({**{f"x{j}": x[:, j] for j in range(columns)}, "label": label})
    pacsv.write_csv(table, path)


def child_load(path):
    from models.data import tables

    started, cpu = time.perf_counter(), cpu_seconds()
    dataset = tables.read_csv(path, "label", task="binary")
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "cpu_seconds": cpu_seconds() - cpu, "peak_rss_mb": peak_rss_mb(),
            "rows": int(len(dataset.y)),
            "features": int(dataset.x.shape[1])}


def child_pandas(path):
    import pandas

    started, cpu = time.perf_counter(), cpu_seconds()
    frame = pandas.read_csv(path)
    return {"seconds": time.perf_counter() - started, "cpu_seconds": cpu_seconds() - cpu,
            "peak_rss_mb": peak_rss_mb(),
            "rows": len(frame), "version": pandas.__version__}


def child_run(path, recipe, epochs, workdir):
    from recipes.run import main

    report = Path(workdir) / f"report-{os.getpid()}.json"
    started, cpu = time.perf_counter(), cpu_seconds()
    status = main([recipe, "--data", str(path), "--target", "label", "--epochs", str(epochs),
                   "--output-dir", str(Path(workdir) / "saved_models"), "--report", str(report)])
    seconds = time.perf_counter() - started
    result = json.loads(report.read_text()) if report.exists() else {}
    return {"seconds": seconds, "cpu_seconds": cpu_seconds() - cpu, "peak_rss_mb": peak_rss_mb(),
            "status": status,
            "accuracy": result.get("metrics", {}).get("accuracy"),
            "train_seconds": result.get("timing", {}).get("train_seconds"),
            "export_seconds": result.get("timing", {}).get("export_seconds")}


def measure(kind, *args):
    """Runs one measurement in a fresh Python process; returns its JSON line."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run(
        [sys.executable, __file__, "--child", kind, *map(str, args)],
        capture_output=True, text=True, env=env, cwd=ROOT,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise SystemExit(f"{kind} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(lines[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--columns", type=int, default=20)
    parser.add_argument("--recipe", default="binary-sigmoid")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=1, help="load measurements to take")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        kind, *rest = args.child
        result = {"load": child_load, "pandas": child_pandas, "run": lambda *a: child_run(
            a[0], a[1], int(a[2]), a[3])}[kind](*rest)
        print(json.dumps(result))
        return 1 if result.get("status") else 0  # a failed run: its stderr is shown

    with tempfile.TemporaryDirectory(prefix="bench_csv-") as workdir:
        path = Path(workdir) / f"bench_{args.rows}x{args.columns}.csv"
        started = time.perf_counter()
        write_table(path, args.rows, args.columns)
        write_seconds = time.perf_counter() - started
        size_mb = path.stat().st_size / 2**20
        loads = [measure("load", path) for _ in range(args.repeat)]
        try:
            import pandas  # noqa: F401

            pandas_loads = [measure("pandas", path) for _ in range(args.repeat)]
        except ImportError:
            pandas_loads = []
        run = measure("run", path, args.recipe, args.epochs, workdir)

    best = min(loads, key=lambda r: r["seconds"])
    every = ", ".join(f"{r['seconds']:.2f}" for r in loads)
    rows = [
        ["file", f"{args.rows:,} rows x {args.columns} features + label, {size_mb:.0f} MiB "
                 f"(written in {write_seconds:.1f} s)"],
        ["load (models.data.tables)", f"{best['seconds']:.2f} s best of {len(loads)} "
                                 f"(all: {every}), CPU {best['cpu_seconds']:.2f} s, "
                                 f"peak RSS {best['peak_rss_mb']:.0f} MiB"],
    ]
    if pandas_loads:
        fastest = min(pandas_loads, key=lambda r: r["seconds"])
        rows.append([f"load (pandas {fastest['version']}, for comparison)",
                     f"{fastest['seconds']:.2f} s best of {len(pandas_loads)}, CPU "
                     f"{fastest['cpu_seconds']:.2f} s, peak RSS "
                     f"{fastest['peak_rss_mb']:.0f} MiB"])
    rows.append([f"whole run ({args.recipe} --epochs {args.epochs})",
                 f"{run['seconds']:.1f} s, CPU {run['cpu_seconds']:.1f} s (train "
                 f"{run['train_seconds']:.1f} s, export "
                 f"{run['export_seconds']:.1f} s), peak RSS {run['peak_rss_mb']:.0f} MiB, "
                 f"test accuracy {run['accuracy']:.4f}, exit {run['status']}"])
    width = max(len(r[0]) for r in rows)
    print(f"CSV benchmark on {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPU(s), load average {os.getloadavg()[0]:.1f}, "
          f"Python {platform.python_version()} (wall seconds grow on a busy machine; "
          "CPU seconds do not)")
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")
    print(json.dumps({
        "rows": args.rows, "columns": args.columns, "file_mib": round(size_mb, 1),
        "load": loads, "pandas": pandas_loads, "run": {"recipe": args.recipe,
                                                        "epochs": args.epochs, **run},
        "targets": {"load_under_10_s": best["seconds"] < 10,
                    "run_under_2_gb": run["peak_rss_mb"] < 2048},
    }, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
