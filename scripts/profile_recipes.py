"""Profile: where each recipe's time goes, phase by phase, at default options.

Each recipe runs in a fresh process, as `python -m recipes.run NAME --report
R.json` does (with `--no-export`, and with the export), after TensorFlow has
started (the report's `timing.total_seconds` leaves that import out too).
The real functions run; a few of them are wrapped in timers, and every
second is given to the innermost phase running then (exclusive times, so
the phases add up to the run):

- `data`: `Run.load_data` (the bundled set or the CSV, the split, the front-end);
- `fit set-up`: the rest of `Run.fit` and `models.training.loop._build_state`
  (the checkpoint's key and folder, the optimizer's and metrics' variables);
- `trace`: tracing the epoch function (`models.training.loop.tracing`);
- `epochs`: the epoch loop (`models.training.loop.run_epochs`): the epochs'
  calls (the first one's graph set-up included) and the callbacks;
- `checkpoint saves`: `Checkpoint._save` (inside the epoch loop): the state
  copied and written to disk;
- `evaluation`: `Run.evaluate`, `models.training.loop.predict`, the test
  metrics and the baselines;
- `figures`: drawing (`recipes.core.plots`) and saving (`save_figures`);
- `export: SavedModel`, `export: ONNX` (conversion and check), `export: other`
  (`model.keras`, the metadata, the version folder);
A lesson that exports nothing (no `--no-export` option) runs in the first
mode only.

- `build + lesson code`: everything else in the run: the model's layers and
  `compile`, and a lesson's own code (its GradientTape demonstrations, ...).

Timings on a shared machine are noisy: with `--repeats N` each recipe runs N
times, the modes alternating, and the table shows medians. `--clock cpu`
gives each phase the CPU seconds the process spent in it (all its threads,
`time.process_time`) instead of wall seconds: on a machine others load too,
that is what stays put when comparing two versions of the code (the first
column is then the CPU seconds of the whole run). Run by hand:

    python scripts/profile_recipes.py                      # every recipe, both modes
    python scripts/profile_recipes.py --recipes dropout,optimizers --repeats 3
    python scripts/profile_recipes.py --modes export --json reports/profile.json
    python scripts/profile_recipes.py --recipes binary-sigmoid --clock cpu --repeats 3

It prints a table per mode and writes JSON (default `reports/profile.json`).
"""

from __future__ import annotations

import argparse
import functools
import importlib
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

PHASES = ["data", "build + lesson code", "fit set-up", "trace", "epochs", "checkpoint saves",
          "evaluation", "figures", "export: SavedModel", "export: ONNX", "export: other"]
"""The table's columns, in order."""

WRAPPED = [
    ("data", "recipes.core.workflow", "Run.load_data"),
    ("fit set-up", "recipes.core.workflow", "Run.fit"),
    ("fit set-up", "models.training.loop", "_build_state"),
    ("epochs", "models.training.loop", "run_epochs"),
    ("checkpoint saves", "models.training.checkpoints", "Checkpoint._save"),
    ("evaluation", "recipes.core.workflow", "Run.evaluate"),
    ("evaluation", "models.training.loop", "predict"),
    ("evaluation", "models.training.evaluation", "metrics"),
    ("evaluation", "models.training.evaluation", "baselines"),
    ("figures", "recipes.core.report", "save_figures"),
    ("figures", "recipes.core.workflow", "save_figures"),
    ("export: other", "models.export.savedmodel", "export"),
    ("export: SavedModel", "models.export.savedmodel", "write_savedmodel"),
    ("export: ONNX", "models.export.onnx_model", "write"),
]
"""(phase, module, function or `Class.method`): the functions the child times."""

MODES = {"no-export": ["--no-export"], "export": []}


class Clock:
    """Exclusive seconds per phase: time goes to the innermost phase open at the moment."""

    def __init__(self, timer=time.perf_counter):
        self.timer = timer
        self.seconds = dict.fromkeys(PHASES, 0.0)
        self._stack = []  # [phase, started]

    def enter(self, phase):
        now = self.timer()
        if self._stack:
            outer = self._stack[-1]
            self.seconds[outer[0]] += now - outer[1]
        self._stack.append([phase, now])

    def leave(self):
        now = self.timer()
        phase, started = self._stack.pop()
        self.seconds[phase] += now - started
        if self._stack:
            self._stack[-1][1] = now

    def wrap(self, phase, fn):
        @functools.wraps(fn)
        def timed(*args, **kwargs):
            self.enter(phase)
            try:
                return fn(*args, **kwargs)
            finally:
                self.leave()
        return timed

    def wrap_context(self, phase, make):
        """Wraps a function that returns a context manager: the `with` body is timed."""
        clock = self

        class Timed:
            def __init__(self, inner):
                self.inner = inner

            def __enter__(self):
                clock.enter(phase)
                return self.inner.__enter__()

            def __exit__(self, *exc):
                try:
                    return self.inner.__exit__(*exc)
                finally:
                    clock.leave()

        @functools.wraps(make)
        def timed(*args, **kwargs):
            return Timed(make(*args, **kwargs))
        return timed


def install(clock):
    """Wraps `WRAPPED`, the epoch function's tracing and `recipes.core.plots`'s functions."""
    for phase, module_name, function in WRAPPED:
        module = importlib.import_module(module_name)
        owner, _, attribute = function.rpartition(".")
        holder = getattr(module, owner) if owner else module
        setattr(holder, attribute, clock.wrap(phase, getattr(holder, attribute)))
    from models.training import loop

    loop.tracing = clock.wrap_context("trace", loop.tracing)
    from recipes.core import plots

    for name in dir(plots):
        value = getattr(plots, name)
        if (callable(value) and getattr(value, "__module__", None) == plots.__name__
                and not name.startswith("_") and not isinstance(value, type)):
            setattr(plots, name, clock.wrap("figures", value))


def child(recipe, mode, folder):
    """In a fresh process: runs `recipe` in `mode` with the phases timed; prints one JSON line."""
    os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")  # as `recipes.run.main` sets it
    from models.training import devices

    devices.import_tensorflow()  # left out, as the report's total leaves it out
    timer = time.process_time if os.environ.get("PROFILE_CLOCK") == "cpu" else time.perf_counter
    clock = Clock(timer)
    install(clock)
    from recipes.run import run_recipe

    from recipes.core import registry

    report = Path(folder) / "report.json"
    exports = "no_export" in registry.get(recipe).options
    argv = ["--output-dir", str(Path(folder) / "out"), "--report", str(report),
            *(MODES[mode] if exports else [])]
    clock.enter("build + lesson code")
    started, cpu_started = time.perf_counter(), time.process_time()
    result = run_recipe(recipe, argv, out=io.StringIO())
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    clock.leave()
    print(json.dumps({"phases": clock.seconds, "wall_seconds": wall, "cpu_seconds": cpu,
                      "timing": result.timing, "metrics": result.metrics}))


def run_child(recipe, mode, clock="wall"):
    with tempfile.TemporaryDirectory() as tmp:
        done = subprocess.run(
            [sys.executable, __file__, "--child", recipe, mode, tmp], cwd=REPO,
            capture_output=True, text=True,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PROFILE_CLOCK": clock,
                 "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO),
                                                             os.environ.get("PYTHONPATH")]))})
    if done.returncode != 0:
        raise RuntimeError(f"{recipe} ({mode}) failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def summarize(samples):
    """Medians over the repeats of one recipe in one mode."""
    return {
        "total_seconds": statistics.median(s["timing"]["total_seconds"] for s in samples),
        "wall_seconds": statistics.median(s["wall_seconds"] for s in samples),
        "cpu_seconds": statistics.median(s["cpu_seconds"] for s in samples),
        "phases": {p: statistics.median(s["phases"][p] for s in samples) for p in PHASES},
        "metrics": samples[-1]["metrics"],
        "samples": samples,
    }


def print_table(mode, rows, clock="wall"):
    short = {"build + lesson code": "build+code", "checkpoint saves": "ckpt",
             "export: SavedModel": "exp:SM", "export: ONNX": "exp:ONNX", "export: other": "exp:oth",
             "fit set-up": "fit-set", "evaluation": "eval"}
    columns = [p for p in PHASES if mode == "export" or not p.startswith("export")]
    if clock == "cpu":
        print(f"\n{mode}: CPU seconds per phase (exclusive, medians; all the process's threads); "
              "cpu = the whole run_recipe's, total = the report's timing.total_seconds (wall)")
        first, key = "cpu", "cpu_seconds"
    else:
        print(f"\n{mode}: seconds per phase (exclusive, medians); total = the report's "
              "timing.total_seconds, wall = the whole run_recipe (the report and its figures too)")
        first, key = "wall", "wall_seconds"
    print(f"  {'recipe':22s} {'total':>6s} {first:>6s} " + " ".join(f"{short.get(p, p):>9s}" for p in columns))
    for recipe, row in rows.items():
        print(f"  {recipe:22s} {row['total_seconds']:6.2f} {row[key]:6.2f} "
              + " ".join(f"{row['phases'][p]:9.3f}" for p in columns))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--recipes", default="", help="comma-separated; default every recipe")
    parser.add_argument("--modes", default=",".join(MODES),
                        help=f"comma-separated; default {','.join(MODES)}")
    parser.add_argument("--repeats", type=int, default=1, help="runs per recipe and mode (median)")
    parser.add_argument("--json", type=Path, default=REPO / "reports" / "profile.json")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="wall seconds (default) or the process's CPU seconds per phase")
    parser.add_argument("--child", nargs=3, metavar=("RECIPE", "MODE", "DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(*args.child)
        return 0
    from recipes.core import registry

    names = [r.strip() for r in args.recipes.split(",") if r.strip()] or registry.names()
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        parser.error(f"unknown mode: {', '.join(unknown)} (choose from {', '.join(MODES)})")
    samples = {mode: {name: [] for name in names} for mode in modes}
    exports = {name: "no_export" in registry.get(name).options for name in names}
    for repeat in range(args.repeats):
        for name in names:
            # alternating, so that both modes share the machine's load; a lesson that
            # exports nothing runs once, in the first mode
            for mode in (modes if exports[name] else modes[:1]):
                sample = run_child(name, mode, args.clock)
                samples[mode][name].append(sample)
                print(f"  {name} ({mode}) {repeat + 1}/{args.repeats}: "
                      f"{sample['timing']['total_seconds']:.2f} s (load {os.getloadavg()[0]:.1f})",
                      flush=True)
    out = {"cpus": os.cpu_count(), "repeats": args.repeats, "clock": args.clock,
           "profile": {mode: {name: summarize(s) for name, s in rows.items() if s}
                       for mode, rows in samples.items()}}
    for mode, rows in out["profile"].items():
        print_table(mode, rows, args.clock)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=2) + "\n")
    print(f"\nJSON: {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
