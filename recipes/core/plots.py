"""Figures the recipes draw, with matplotlib's file-only backend.

Each function returns a `matplotlib.figure.Figure`; the caller saves it
(`recipes.core.report.save_figures`). Nothing opens a window. In a Jupyter
kernel the notebook's own (inline) backend is kept, so `recipes.cook(...)`'s
figures show in the notebook and the notebook's own plots still do.
"""

from __future__ import annotations

import sys

import matplotlib

if "ipykernel" not in sys.modules:
    matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)


def history(logs, title):
    """Training curves: loss (left) and the metric (right), train and validation, by epoch.

    Args:
        logs: a Keras `History.history` dict (`loss`, `val_loss`, `accuracy`, ...).
        title: the figure's title.
    """
    metric = next((k for k in logs if k not in ("loss", "epoch_seconds") and not k.startswith("val_")), None)
    panels = ["loss"] + ([metric] if metric else [])
    figure, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.6), squeeze=False)
    for axis, key in zip(axes[0], panels):
        epochs = range(1, len(logs[key]) + 1)
        axis.plot(epochs, logs[key], label="train")
        if f"val_{key}" in logs:
            axis.plot(epochs, logs[f"val_{key}"], label="validation")
        axis.set_xlabel("epoch")
        axis.set_ylabel(key)
        axis.grid(alpha=0.3)
        axis.legend()
    figure.suptitle(title)
    figure.tight_layout()
    return figure


def curves(series, title, xlabel, ylabel, logy=False):
    """Several named curves on one axis: `{"name": (x, y)}` or `{"name": y}`."""
    figure, axis = plt.subplots(figsize=(6.5, 4))
    for name, values in series.items():
        x, y = values if isinstance(values, tuple) else (range(1, len(values) + 1), values)
        axis.plot(list(x), list(y), label=name, marker="o" if len(list(y)) < 25 else None, ms=3)
    axis.set_xlabel(xlabel)
    axis.set_ylabel(ylabel)
    if logy:
        axis.set_yscale("log")
    axis.grid(alpha=0.3)
    axis.legend()
    axis.set_title(title)
    figure.tight_layout()
    return figure


def function_panels(panels, title, columns=3):
    """One small panel per function of z: its curves, and points marked on them.

    Args:
        panels: `{"panel title": {"x": z, "curves": {"label": y, ...},
            "points": [(x, y, "label"), ...], "xlabel": "z"}}`; `points` may be
            left out, and `xlabel` defaults to `"z"`.
        title: the figure's title.
        columns: panels per row. Defaults to `3`.
    """
    rows = -(-len(panels) // columns)
    columns = min(columns, len(panels))
    figure, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.3 * rows), squeeze=False)
    for axis, (name, panel) in zip(axes.flat, panels.items()):
        for label, y in panel["curves"].items():
            axis.plot(panel["x"], y, label=label)
        for x, y, label in panel.get("points", ()):
            axis.plot([x], [y], "o", color="black", ms=4)
            axis.annotate(label, (x, y), textcoords="offset points", xytext=(6, -12), fontsize=8)
        axis.axhline(0, color="grey", lw=0.6)
        axis.axvline(0, color="grey", lw=0.6)
        axis.set_xlabel(panel.get("xlabel", "z"))
        axis.set_title(name)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    for axis in list(axes.flat)[len(panels):]:
        axis.set_visible(False)
    figure.suptitle(title)
    figure.tight_layout()
    return figure


def loss_by_epoch_and_time(runs, title):
    """Training-loss curves of several runs, by epoch (left) and by wall seconds (right).

    Args:
        runs: `{"name": {"loss": [...], "seconds": [...]}}`, one value per epoch;
            `seconds` is the wall time at the end of each epoch.
        title: the figure's title.
    """
    figure, (by_epoch, by_time) = plt.subplots(1, 2, figsize=(11, 4))
    for name, run in runs.items():
        by_epoch.plot(range(1, len(run["loss"]) + 1), run["loss"], label=name)
        by_time.plot(run["seconds"], run["loss"], label=name)
    for axis, xlabel in ((by_epoch, "epoch"), (by_time, "wall seconds")):
        axis.set_xlabel(xlabel)
        axis.set_ylabel("training loss")
        axis.grid(alpha=0.3)
        axis.legend()
    figure.suptitle(title)
    figure.tight_layout()
    return figure


def weight_shrinkage(norms, kernels, title):
    """L2 at work: Σw² of the hidden kernels by epoch (left), their weights' histogram (right).

    Args:
        norms: `{"name": [Σw² before training, after epoch 1, ...]}`.
        kernels: `{"name": flat array of the hidden kernels' weights}`, same names.
        title: the figure's title.
    """
    import numpy as np

    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    for name, values in norms.items():
        left.plot(range(len(values)), values, label=name)
    left.set_xlabel("epoch (0 = initial weights)")
    left.set_ylabel("Σw² over the hidden kernels")
    left.grid(alpha=0.3)
    left.legend()
    everything = np.concatenate([np.ravel(w) for w in kernels.values()])
    edges = np.linspace(everything.min(), everything.max(), 61)
    for name, weights in kernels.items():
        right.hist(np.ravel(weights), bins=edges, alpha=0.55, label=name)
    right.set_xlabel("hidden kernel weight")
    right.set_ylabel("count")
    right.set_yscale("log")
    right.grid(alpha=0.3)
    right.legend()
    figure.suptitle(title)
    figure.tight_layout()
    return figure


def dropout_passes(inference, passes, rate, title):
    """One row's hidden units: at inference (top row), then in several training passes.

    Args:
        inference: the units' values with dropout off, `[units]`.
        passes: the same units in training passes, `[passes, units]`.
        rate: the dropout rate, for the labels.
        title: the figure's title.
    """
    import numpy as np

    rows = np.vstack([np.asarray(inference)[None, :], np.asarray(passes)])
    figure, axis = plt.subplots(figsize=(10, 0.45 * len(rows) + 1.4))
    image = axis.imshow(rows, aspect="auto", cmap="viridis", interpolation="nearest")
    axis.set_yticks(range(len(rows)))
    axis.set_yticklabels(["inference"] + [f"training pass {i}" for i in range(1, len(rows))])
    axis.set_xlabel(f"hidden unit (dropped units are 0, survivors ×1/(1 − {rate:g}))")
    figure.colorbar(image, ax=axis, label="activation")
    axis.set_title(title)
    figure.tight_layout()
    return figure


def early_stopping(history, *, best_epoch, stop_epoch, monitor, target, target_epoch, title):
    """Two stopping rules on one run: validation loss with patience, a metric reaching a target.

    Args:
        history: the logs of a run trained for all its epochs (`loss`, `val_loss`, `monitor`).
        best_epoch: the 1-based epoch whose weights `EarlyStopping` keeps.
        stop_epoch: the 1-based epoch where `EarlyStopping` stopped.
        monitor: the metric the target rule watches, e.g. `"val_accuracy"`.
        target: its target value.
        target_epoch: the 1-based epoch that reached it, or `None`.
        title: the figure's title.
    """
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 3.8))
    epochs = range(1, len(history["loss"]) + 1)
    left.plot(epochs, history["loss"], label="train loss")
    left.plot(epochs, history["val_loss"], label="validation loss")
    left.axvline(best_epoch, color="green", ls="--", label=f"best epoch {best_epoch} (kept)")
    left.axvline(stop_epoch, color="red", ls=":", label=f"stopped after epoch {stop_epoch}")
    left.set_xlabel("epoch")
    left.set_ylabel("loss")
    left.set_title("EarlyStopping(val_loss, patience, restore_best_weights)", fontsize=9)
    left.grid(alpha=0.3)
    left.legend(fontsize=8)
    base = monitor.removeprefix("val_")
    if base in history:
        right.plot(epochs, history[base], label=f"train {base}")
    right.plot(epochs, history[monitor], label=monitor)
    right.axhline(target, color="gray", ls="--", label=f"target {target:g}")
    if target_epoch is not None:
        right.axvline(target_epoch, color="red", ls=":", label=f"reached at epoch {target_epoch}")
    right.set_xlabel("epoch")
    right.set_ylabel(base)
    right.set_title(f"StopAtTarget({monitor} reaches {target:g})", fontsize=9)
    right.grid(alpha=0.3)
    right.legend(fontsize=8)
    figure.suptitle(title)
    figure.tight_layout()
    return figure


def train_val_panels(histories, title, *, metric="accuracy", marks=None):
    """One column per run: train vs validation `metric` (top) and loss (bottom), by epoch.

    Args:
        histories: `{"run name": Keras History.history dict}`, in column order.
        title: the figure's title.
        metric: the metric of the top row. Defaults to `"accuracy"`.
        marks: `{"run name": 1-based epoch}` to mark with a dashed line (e.g. the
            epoch whose weights early stopping kept). Defaults to `None`.
    """
    marks = marks or {}
    figure, axes = plt.subplots(2, len(histories), figsize=(3.2 * len(histories), 5.6),
                                squeeze=False, sharex=True, sharey="row")
    for column, (name, logs) in enumerate(histories.items()):
        for row, key in enumerate((metric, "loss")):
            axis = axes[row][column]
            epochs = range(1, len(logs[key]) + 1)
            axis.plot(epochs, logs[key], label="train")
            axis.plot(epochs, logs[f"val_{key}"], label="validation")
            if name in marks:
                axis.axvline(marks[name], color="gray", ls="--", lw=1, label="kept")
            axis.grid(alpha=0.3)
            if row == 0:
                axis.set_title(name)
            else:
                axis.set_xlabel("epoch")
                axis.set_yscale("log")
            if column == 0:
                axis.set_ylabel(key)
                axis.legend(fontsize=8)
    figure.suptitle(title)
    figure.tight_layout()
    return figure


def network_values(inputs, layers, title):
    """A layered network drawn as the notes draw it: a column of neurons per layer, lines
    for the weights, and each neuron's z and f(z) written beside it.

    Args:
        inputs: the input row, one value per input node.
        layers: `[{"name", "activation", "z": [...], "a": [...]}, ...]`, first layer first.
        title: the figure's title.
    """
    columns = [[f"x{i + 1} = {v:.3g}" for i, v in enumerate(inputs)]]
    columns += [[f"z = {z:.3f}\nf(z) = {a:.3f}" for z, a in zip(layer["z"], layer["a"])]
                for layer in layers]
    names = ["input", *(f"{layer['name']} ({layer['activation']})" for layer in layers)]
    tallest = max(len(c) for c in columns)
    figure, axis = plt.subplots(figsize=(2.6 * len(columns), 0.9 * tallest + 1.2))
    positions = [[(i, (len(c) - 1) / 2 - j) for j in range(len(c))] for i, c in enumerate(columns)]
    for left, right in zip(positions, positions[1:]):
        for x0, y0 in left:
            for x1, y1 in right:
                axis.plot([x0, x1], [y0, y1], color="grey", lw=0.4, alpha=0.6, zorder=1)
    for i, (labels, points) in enumerate(zip(columns, positions)):
        for label, (x, y) in zip(labels, points):
            axis.scatter([x], [y], s=260, color="white", edgecolors="black", zorder=2)
            axis.annotate(label, (x, y), textcoords="offset points", xytext=(12, -4), fontsize=7,
                          zorder=3)
        axis.text(i, (tallest - 1) / 2 + 0.8, names[i], ha="center", fontsize=8)
    axis.set_xlim(-0.3, len(columns) - 0.2)
    axis.set_ylim(-(tallest - 1) / 2 - 0.7, (tallest - 1) / 2 + 1.1)
    axis.axis("off")
    axis.set_title(title, fontsize=9)
    figure.tight_layout()
    return figure
