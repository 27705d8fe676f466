"""The library behind the recipes, in layers; each sub-package's docstring says what it may import.

| layer | package | holds |
|---|---|---|
| data | `models.data` | bundled data sets, CSV tables, the seeded split, the preprocessing front-end |
| training | `models.training` | the fast training loop, distribution, resume, callbacks, optimizers, metrics |
| export | `models.export` | the export layout (no TensorFlow), SavedModel and ONNX writers |
| serving | `models.zoo`, `models.serve` | exported models in an app, and a TensorFlow-Serving-compatible server |
| lessons | `models.lessons` | the notes' formulas: derivatives, update rules, entropy and the tree |

`models.tensorflow_internals` is the one module that touches TensorFlow's
private API, with a public fallback for each call. The readers (`zoo`,
`serve`) import `models.export.layout` and no TensorFlow at import time.
Importing this package imports nothing heavy.
"""
