"""The data layer: real tables in, a seeded split and a preprocessing front-end out.

- `dataset`: the types: `Dataset`, its `Column`s, its `Split`, `DataError`;
- `bundled`: the data sets that ship with scikit-learn (`load`), the `Dataset`
  and its seeded train / validation / test `split`;
- `tables`: the user's own CSV file (`--data`) read into a `Dataset`: numeric
  and categorical columns, missing cells kept;
- `encoding`: text categories and missing values as the numbers a network
  takes (imputation, a "was missing" indicator, one-hot), learned on the
  training rows and built from Keras layers so it goes into the export;
- `prepared`: `prepare(dataset, seed)`, what a recipe trains on: the split,
  the target in training units, and the Keras preprocessing front-end that goes
  in front of the recipe's network and into the export.

May import: NumPy, scikit-learn, pyarrow, Keras (inside functions). Nothing
else of the package but `models.data` itself and the export contract
`models.export.layout` (input names, the spellings of a missing cell).

Example:

>>> from models import data
>>> iris = data.load("iris")
>>> iris.task, iris.x.shape
('multiclass', (150, 4))
"""

from models.data.bundled import (
    BUNDLED, Column, DataError, Dataset, Split, fingerprint, load, split,
)

__all__ = ["BUNDLED", "Column", "DataError", "Dataset", "Split", "fingerprint", "load", "split"]
