"""Benchmark: where the lean path stops paying, by the width of a 2-hidden-layer MLP.

`models.training.loop.is_lean` trains a model of at most `LEAN_PARAMETERS`
weights, on a CPU-only machine, with grappler off and on TensorFlow's
single-threaded executor. This script trains the same seeded MLPs
(64 inputs -> W relu -> W relu -> 10 softmax, Adam) on the digits'
`regularization`-sized split (20% train: 359 rows, batch 32, validation on
719 rows each epoch) both ways, alternately, and reports per width the median
seconds of the first epoch (the trace) and of a later epoch, the ratio
lean / default, and the largest difference of the two runs' final losses.

Run by hand, not in CI (CPU only: with a GPU no model is lean):

    python scripts/bench_lean.py                                # widths 64..512, 3 repeats
    python scripts/bench_lean.py --widths 192,256,320 --epochs 40 --repeats 5

It prints a table and writes JSON (default `reports/bench_lean.json`, an ignored folder).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def train(width, epochs, lean, seed, parts):
    """One seeded run; returns (first epoch s, median later epoch s, final loss, weights)."""
    import keras

    from models.training import loop, twins

    twins.forget()  # every run traces its own epoch: the first epoch's seconds hold the trace
    loop.LEAN_PARAMETERS = 10**12 if lean else 0
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([
        keras.Input((parts.x_train.shape[1],)),
        keras.layers.Dense(width, activation="relu"),
        keras.layers.Dense(width, activation="relu"),
        keras.layers.Dense(10, activation="softmax"),
    ])
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    history = loop.fit(model, parts.x_train, parts.y_train, epochs=epochs, batch_size=32,
                       validation_data=(parts.x_val, parts.y_val), seed=seed, verbose=0).history
    seconds = history["epoch_seconds"]
    return seconds[0], statistics.median(seconds[1:]), history["loss"][-1], model.count_params()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", default="64,128,192,256,320,384,512",
                        help="comma-separated hidden widths")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", default="reports/bench_lean.json")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")  # as `recipes.run.main` sets it

    import tensorflow as tf

    from models import data
    from models.training import loop

    if tf.config.list_logical_devices("GPU"):
        sys.exit("bench_lean.py: a GPU is visible; with one no model is lean. "
                 "Run it with CUDA_VISIBLE_DEVICES= to measure the CPU paths.")
    parts = data.split(data.load("digits"), 42, val_fraction=0.4, test_fraction=0.4)
    parts = dataclasses.replace(parts, x_train=parts.x_train / 16, x_val=parts.x_val / 16)  # pixels 0-16 -> 0-1
    threshold = loop.LEAN_PARAMETERS
    rows = []
    for width in (int(w) for w in args.widths.split(",")):
        runs = {True: [], False: []}
        for _ in range(args.repeats):
            for lean in (True, False):  # alternately, so both see the same machine
                runs[lean].append(train(width, args.epochs, lean, 0, parts))
        row = {"width": width, "weights": runs[True][0][3]}
        for lean, name in ((True, "lean"), (False, "default")):
            row[f"{name}_first_s"] = statistics.median(r[0] for r in runs[lean])
            row[f"{name}_epoch_ms"] = 1000 * statistics.median(r[1] for r in runs[lean])
        row["ratio"] = row["lean_epoch_ms"] / row["default_epoch_ms"]
        row["loss_difference"] = max(abs(a[2] - b[2]) for a, b in zip(runs[True], runs[False]))
        rows.append(row)
        print(f"  width {width}: lean {row['lean_epoch_ms']:.2f} ms, "
              f"default {row['default_epoch_ms']:.2f} ms an epoch", file=sys.stderr)

    print(f"\nEpoch seconds by width, {args.epochs} epochs, {args.repeats} repeats (medians); "
          f"LEAN_PARAMETERS = {threshold:,}")
    header = (f"{'width':>6} {'weights':>9} {'lean 1st s':>11} {'dflt 1st s':>11} "
              f"{'lean ms':>8} {'dflt ms':>8} {'ratio':>6} {'|Δloss|':>9}")
    print(header)
    for row in rows:
        print(f"{row['width']:>6} {row['weights']:>9,} {row['lean_first_s']:>11.3f} "
              f"{row['default_first_s']:>11.3f} {row['lean_epoch_ms']:>8.2f} "
              f"{row['default_epoch_ms']:>8.2f} {row['ratio']:>6.2f} {row['loss_difference']:>9.2e}")
    out = {"machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                       "tensorflow": tf.__version__},
           "epochs": args.epochs, "repeats": args.repeats, "lean_parameters": threshold,
           "rows": rows}
    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    print(f"\nJSON: {path}")


if __name__ == "__main__":
    main()
