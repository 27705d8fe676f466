"""Data sets: the real tables that ship with scikit-learn (and the penguins), and a seeded split.

A `Dataset` (`models.data.dataset`) holds raw feature values (float32, no scaling: scaling lives inside
the model), the target, and what an export needs to describe them: feature
names, class names, the task, and a sha256 of the data. `load(name)` reads one
of scikit-learn's bundled sets (nothing is downloaded); `split(dataset, seed)`
cuts train / validation / test, stratified for classification.

Example:

>>> from models import data
>>> iris = data.load("iris")
>>> iris.task, iris.x.shape, iris.class_names
('multiclass', (150, 4), ['setosa', 'versicolor', 'virginica'])
>>> parts = data.split(iris, seed=0)
>>> len(parts.y_train), len(parts.y_val), len(parts.y_test)
(90, 30, 30)
"""

from __future__ import annotations

import numpy as np

from models.data.dataset import TASKS, Column, DataError, Dataset, Split, fingerprint

__all__ = ["BUNDLED", "TASKS", "Column", "DataError", "Dataset", "Split", "fingerprint", "load",
           "split"]


def _bundled(loader, name, task, target, description, transform=None):
    bunch = loader()
    x = np.asarray(bunch.data, dtype=np.float32)
    if task == "regression":
        y = np.asarray(bunch.target, dtype=np.float32)
        if transform is not None:
            y = transform(y)
        class_names = None
    else:
        y = np.asarray(bunch.target, dtype=np.int64)
        class_names = [str(c) for c in bunch.target_names]
    return Dataset(
        name=name, x=x, y=y, feature_names=[str(f) for f in bunch.feature_names],
        target=target, task=task, class_names=class_names, description=description,
        sha256=fingerprint(x, y),
    )


def _breast_cancer():
    from sklearn.datasets import load_breast_cancer

    return _bundled(
        load_breast_cancer, "breast_cancer", "binary", "diagnosis",
        "Wisconsin diagnostic breast cancer (scikit-learn): 569 tumours, 30 features, "
        "malignant / benign",
    )


def _iris():
    from sklearn.datasets import load_iris

    return _bundled(
        load_iris, "iris", "multiclass", "species",
        "Fisher's iris (scikit-learn): 150 flowers, 4 measurements, 3 species",
    )


def _wine():
    from sklearn.datasets import load_wine

    return _bundled(
        load_wine, "wine", "multiclass", "cultivar",
        "UCI wine (scikit-learn): 178 wines, 13 chemical measurements, 3 cultivars",
    )


def _digits():
    from sklearn.datasets import load_digits

    return _bundled(
        load_digits, "digits", "multiclass", "digit",
        "UCI handwritten digits (scikit-learn): 1797 images of 8x8 pixels, 10 classes",
    )


def _diabetes():
    from sklearn.datasets import load_diabetes

    return _bundled(
        load_diabetes, "diabetes", "regression", "disease progression after one year",
        "Diabetes (scikit-learn): 442 patients, 10 baseline measurements, a positive "
        "progression score (25 to 346)",
    )


def _diabetes_centered():
    from sklearn.datasets import load_diabetes

    mean = float(np.mean(load_diabetes().target))
    return _bundled(
        load_diabetes, "diabetes_centered", "regression",
        f"disease progression minus the cohort mean ({mean:.2f})",
        "Diabetes (scikit-learn), target centred on the mean: progression above (+) or "
        "below (-) the average patient's",
        transform=lambda y: (y - mean).astype(np.float32),
    )


def _penguins():
    from pathlib import Path

    from models.data.tables import read_csv

    table = read_csv(Path(__file__).with_name("penguins.csv"), "species", task="multiclass")
    return Dataset(**{
        **table.__dict__, "name": "penguins",
        "description": "Palmer penguins (Gorman, Williams & Fraser 2014; CC0, as shipped by the "
                       "palmerpenguins package): 344 penguins, 7 columns (island and sex as text; "
                       "19 missing cells in 5 columns), 3 species",
    })


BUNDLED = {
    "breast_cancer": _breast_cancer,
    "iris": _iris,
    "wine": _wine,
    "digits": _digits,
    "diabetes": _diabetes,
    "diabetes_centered": _diabetes_centered,
    "penguins": _penguins,
}
"""The data sets that ship with scikit-learn (and the Palmer penguins, which ship with
this package as `models/data/penguins.csv`), by name."""


def load(name):
    """Loads a bundled data set by name (see `BUNDLED`).

    Raises:
        ValueError: an unknown name; the message lists the known ones.
    """
    if name not in BUNDLED:
        raise ValueError(
            f"`name` must be one of {', '.join(BUNDLED)}. Received: name={name!r}"
        )
    return BUNDLED[name]()


def split(dataset, seed, *, val_fraction=0.2, test_fraction=0.2):
    """Cuts `dataset` into train, validation and test parts.

    Classification splits are stratified, so every part keeps the class
    proportions. The same seed gives the same split.

    Args:
        dataset: a `Dataset`.
        seed: the random seed of the shuffle.
        val_fraction: share of rows for validation. Defaults to `0.2`.
        test_fraction: share of rows for the held-out test. Defaults to `0.2`.

    Returns:
        A `Split`.

    Raises:
        DataError: too few rows, or a class too small to appear in every part.
    """
    from sklearn.model_selection import train_test_split

    for name, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0 < value < 1:
            raise ValueError(f"`{name}` must be in (0, 1). Received: {name}={value}")
    if val_fraction + test_fraction >= 1:
        raise ValueError(
            "`val_fraction + test_fraction` must be below 1. "
            f"Received: {val_fraction} + {test_fraction}"
        )
    n = len(dataset.y)
    n_parts_min = 3 if dataset.task == "regression" else 3 * dataset.n_classes
    if n < max(10, n_parts_min):
        raise DataError(
            f"{dataset.name} has {n} rows: too few to split into train, validation and test "
            f"parts (at least {max(10, n_parts_min)} needed). Add rows."
        )
    stratify = dataset.y if dataset.task != "regression" else None
    if stratify is not None:
        counts = np.bincount(dataset.y, minlength=dataset.n_classes)
        if counts.min() < 3:
            rare = dataset.class_names[int(counts.argmin())]
            raise DataError(
                f"Class {rare!r} of {dataset.name} has {counts.min()} row(s); each class needs "
                "at least 3 to appear in the train, validation and test parts. Add rows of "
                "that class or remove it."
            )
    try:
        x_rest, x_test, y_rest, y_test = train_test_split(
            dataset.x, dataset.y, test_size=test_fraction, random_state=seed, stratify=stratify
        )
        stratify = y_rest if stratify is not None else None
        x_train, x_val, y_train, y_val = train_test_split(
            x_rest, y_rest, test_size=val_fraction / (1 - test_fraction), random_state=seed,
            stratify=stratify,
        )
    except ValueError as error:  # a stratified part smaller than the number of classes
        raise DataError(
            f"{dataset.name} cannot be split into stratified train, validation and test "
            f"parts: {error}. Add rows."
        ) from None
    return Split(x_train, y_train, x_val, y_val, x_test, y_test)
