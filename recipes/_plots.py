"""Figures the recipes draw, with matplotlib's file-only backend.

Each function returns a `matplotlib.figure.Figure`; the caller saves it
(`recipes.report.save_figures`). Nothing opens a window.
"""

from __future__ import annotations

import matplotlib

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
