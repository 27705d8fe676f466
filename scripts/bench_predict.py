"""Benchmark: one exported model's prediction paths, and an app's start-up with and without TensorFlow.

Measured side by side in one run:

- 1 row and 256 rows through `zoo.load(...).predict_proba` (ONNX Runtime on
  `model.onnx`), the same through zoo's SavedModel fallback, the SavedModel's
  `serving_default` signature called directly, `keras.Model.predict`,
  `model(x)`, raw ONNX Runtime, and a NumPy forward pass of the same weights
  (the floor): median microseconds per call, and ratios to the floor;
- a fresh process that does `from models import zoo; zoo.load(...).predict(rows)`:
  wall seconds from launch to exit and peak resident memory, with the ONNX file
  (no TensorFlow) and with the SavedModel (TensorFlow);
- the export's cost: SavedModel + `model.keras`, and the ONNX conversion added to it.

The model is `scripts/bench.py`'s reference job: a 64-64-10 ReLU MLP on the digits
data (Adam, a few epochs), exported with `models.export.savedmodel.export`. `--model FOLDER` benchmarks an existing
version folder instead (its `model.keras` gives the Keras and NumPy paths).

Run by hand, not in CI:

    python scripts/bench_predict.py
    python scripts/bench_predict.py --repeats 9 --json reports/bench_predict.json

It prints a table and writes JSON (default `reports/bench_predict.json`, an ignored folder).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # the floor on one core, like ONNX Runtime in zoo

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def make_export(root, epochs=5, seed=0):
    """Trains the digits 64-64-10 MLP and exports it under `root`; returns the version folder and test rows."""
    import keras

    from models import data, training
    from models.data.prepared import prepare
    from models.export import savedmodel

    digits = prepare(data.load("digits"), seed)
    keras.utils.set_random_seed(seed)
    network = keras.Sequential([keras.layers.Dense(64, activation="relu"),
                                keras.layers.Dense(64, activation="relu"),
                                keras.layers.Dense(10, activation="softmax")], name="digits_mlp")
    model = digits.with_preprocessing(network)
    model.compile(optimizer=keras.optimizers.Adam(0.001), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    training.fit(model, digits.x_train, digits.y_train, epochs=epochs, batch_size=32, seed=seed,
                 verbose=0)
    folder = savedmodel.export(
        digits.for_export(model), output_dir=root, name="digits-mlp", task="multiclass",
        class_names=digits.class_names,
        metadata={"recipe": "bench", "feature_names": digits.dataset.feature_names,
                  "target": digits.dataset.target},
    )
    split = digits.split
    return folder, split.x_test


def numpy_forward(model):
    """A NumPy forward pass of a recipe's model (front-end, nested `Sequential`): `f(x) -> outputs`."""
    import keras

    def flat(layers):
        for layer in layers:
            if hasattr(layer, "layers"):
                yield from flat(layer.layers)
            else:
                yield layer

    acts = {
        "relu": lambda z: np.maximum(z, 0), "linear": lambda z: z, "tanh": np.tanh,
        "sigmoid": lambda z: 1 / (1 + np.exp(-z)), "leaky_relu": lambda z: np.where(z > 0, z, 0.2 * z),
        "elu": lambda z: np.where(z > 0, z, np.expm1(np.minimum(z, 0))),
    }

    def softmax(z):
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    acts["softmax"] = softmax
    steps = []
    for layer in flat(model.layers):
        if isinstance(layer, keras.layers.Normalization):
            mean = np.asarray(layer.mean, np.float32).reshape(-1)
            scale = 1 / np.maximum(np.sqrt(np.asarray(layer.variance, np.float32).reshape(-1)), 1e-7)
            steps.append(lambda h, m=mean, s=scale: (h - m) * s)
        elif isinstance(layer, keras.layers.Dense):
            kernel, bias = (np.asarray(w, np.float32) for w in layer.get_weights())
            act = acts[keras.activations.serialize(layer.activation)]
            steps.append(lambda h, k=kernel, b=bias, a=act: a(h @ k + b))
        elif isinstance(layer, keras.layers.Rescaling):
            steps.append(lambda h, s=float(layer.scale), o=float(layer.offset): h * s + o)
        elif not isinstance(layer, (keras.layers.Dropout, keras.layers.InputLayer)):
            raise ValueError(f"No NumPy form for layer {layer.name} ({type(layer).__name__})")

    def forward(x):
        for step in steps:
            x = step(x)
        return x

    return forward


def per_call(paths, repeats, budget=0.1):
    """Median seconds per call of each `fn()` in `paths`, timed round-robin.

    Each path gets a loop count that takes about `budget` seconds; the repeats
    then visit every path in turn, so a change in the machine's load touches
    all of them alike.
    """
    loops = {}
    for name, fn in paths.items():
        fn()
        started, calls = time.perf_counter(), 0
        while time.perf_counter() - started < budget / 2 or calls < 2:
            fn()
            calls += 1
        loops[name] = max(1, calls * 2)
    samples = {name: [] for name in paths}
    for _ in range(repeats):
        for name, fn in paths.items():
            started = time.perf_counter()
            for _ in range(loops[name]):
                fn()
            samples[name].append((time.perf_counter() - started) / loops[name])
    return {name: statistics.median(values) for name, values in samples.items()}


def prediction_paths(folder, x_test, repeats):
    """Times every path at 1 and 256 rows; checks they agree first."""
    import keras
    import onnxruntime
    import tensorflow as tf

    from models import zoo

    fast = zoo.load(folder)
    fallback = zoo.load(folder, backend="savedmodel")
    model = keras.models.load_model(folder / "model.keras")
    signature = tf.saved_model.load(str(folder)).signatures["serving_default"]
    session = onnxruntime.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    forward = numpy_forward(model)

    rows = np.resize(x_test, (256, x_test.shape[1])).astype(np.float32)
    reference = np.asarray(model(rows))
    for name, got in {
        "zoo (ONNX)": fast.predict_proba(rows), "zoo (SavedModel)": fallback.predict_proba(rows),
        "numpy": forward(rows),
    }.items():
        np.testing.assert_allclose(got, reference, atol=1e-5, err_msg=name)

    results = {}
    for n in (1, 256):
        x = rows[:n]
        x_list = x.tolist()
        paths = {
            "zoo.predict_proba, ONNX Runtime (ndarray)": lambda: fast.predict_proba(x),
            "zoo.predict, ONNX Runtime (list of lists)": lambda: fast.predict(x_list),
            "zoo.predict_proba, SavedModel fallback": lambda: fallback.predict_proba(x),
            "SavedModel signature, called directly": lambda: signature(features=tf.constant(x)),
            "keras model(x)": lambda: model(x, training=False).numpy(),
            "keras Model.predict": lambda: model.predict(x, verbose=0),
            "ONNX Runtime session.run, raw": lambda: session.run(["probabilities"], {"features": x}),
            "NumPy forward pass (floor)": lambda: forward(x),
        }
        results[n] = per_call(paths, repeats)
    return results


APP = """
import json, sys, time
from models import zoo
model = zoo.load({folder!r}, backend={backend!r})
labels = model.predict({rows!r})
peak = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:"))
print(json.dumps({{"peak_mib": peak / 1024, "tensorflow": "tensorflow" in sys.modules, "label": labels[0]}}))
"""


def app_start(folder, rows, backend, repeats):
    """Median wall seconds and peak MiB of a fresh process that loads the model and predicts."""
    seconds, peaks, imported = [], [], None
    for _ in range(repeats):
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", APP.format(folder=str(folder), backend=backend, rows=rows)],
            cwd=REPO, capture_output=True, text=True, check=True,
        )
        seconds.append(time.perf_counter() - started)
        report = json.loads(done.stdout)
        peaks.append(report["peak_mib"])
        imported = report["tensorflow"]
    return {"seconds": statistics.median(seconds), "peak_mib": statistics.median(peaks),
            "imports_tensorflow": imported}


def export_cost(folder, repeats):
    """Median seconds of the SavedModel + model.keras writes, and of the ONNX conversion + check."""
    import keras

    from models.export import onnx_model, savedmodel

    model = keras.models.load_model(folder / "model.keras")
    meta = json.loads((folder / "metadata.json").read_text())
    base, onnx = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(repeats):
            target = Path(tmp) / str(i)
            target.mkdir()
            started = time.perf_counter()
            serve = savedmodel.serving_function(model, meta["task"], meta.get("class_names"))
            savedmodel.write_savedmodel(model, target, meta["task"], meta.get("class_names"),
                                        serve=serve)
            model.save(target / "model.keras")
            base.append(time.perf_counter() - started)
            started = time.perf_counter()
            record = onnx_model.write(target)
            onnx.append(time.perf_counter() - started)
            assert record["file"], record
    return {"savedmodel_and_keras_seconds": statistics.median(base), "onnx_seconds": statistics.median(onnx)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, help="an export's version folder (default: train the digits MLP)")
    parser.add_argument("--repeats", type=int, default=9, help="timed loops per path (median); default 9")
    parser.add_argument("--app-repeats", type=int, default=3, help="fresh processes per app variant; default 3")
    parser.add_argument("--json", type=Path, default=REPO / "reports" / "bench_predict.json")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        if args.model is None:
            folder, x_test = make_export(Path(tmp))
        else:
            from models import zoo

            folder = args.model.resolve()
            x_test = np.random.default_rng(0).normal(size=(256, len(zoo.load(folder).feature_names)))
        paths = prediction_paths(folder, x_test.astype(np.float32), args.repeats)
        rows = x_test[:1].tolist()
        apps = {backend: app_start(folder, rows, backend, args.app_repeats) for backend in ("onnx", "savedmodel")}
        exports = export_cost(folder, max(3, args.repeats // 2))

    floor = {n: paths[n]["NumPy forward pass (floor)"] for n in paths}
    signature = {n: paths[n]["SavedModel signature, called directly"] for n in paths}
    print(f"\nPrediction, median microseconds per call ({platform.node()}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f})")
    print(f"{'path':45s} {'1 row':>10s} {'x floor':>8s} {'256 rows':>10s} {'x floor':>8s}")
    for name in paths[1]:
        print(f"{name:45s} {paths[1][name] * 1e6:10.1f} {paths[1][name] / floor[1]:8.2f} "
              f"{paths[256][name] * 1e6:10.1f} {paths[256][name] / floor[256]:8.2f}")
    zoo_1 = paths[1]["zoo.predict_proba, ONNX Runtime (ndarray)"]
    print(f"\nzoo (ONNX) 1 row: {zoo_1 / floor[1]:.2f}x the NumPy floor (target <= 2), "
          f"{signature[1] / zoo_1:.0f}x faster than the SavedModel signature (target >= 10)")
    print("\nAn app: fresh process, `from models import zoo; zoo.load(...).predict(rows)`")
    for backend, r in apps.items():
        print(f"  {backend:10s} {r['seconds']:.2f} s, peak {r['peak_mib']:.0f} MiB, "
              f"imports TensorFlow: {r['imports_tensorflow']}")
    print(f"\nExport: SavedModel + model.keras {exports['savedmodel_and_keras_seconds']:.2f} s; "
          f"ONNX conversion + check adds {exports['onnx_seconds']:.2f} s")

    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({
        "machine": {"node": platform.node(), "cpus": os.cpu_count(), "load_average": os.getloadavg(),
                    "python": platform.python_version()},
        "model": str(args.model or "digits 64-64-10 MLP"),
        "seconds_per_call": {str(n): v for n, v in paths.items()},
        "ratio_to_numpy_floor": {str(n): {k: v / floor[n] for k, v in paths[n].items()} for n in paths},
        "app_start": apps,
        "export": exports,
    }, indent=2) + "\n")
    print(f"JSON: {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
