"""The library behind the recipes, in layers; each sub-package's docstring says what it may import.

| layer | package | holds |
|---|---|---|
| data | `models.data` | bundled data sets, CSV tables, the seeded split, the preprocessing front-end |
| training | `models.training` | the fast training loop, distribution, resume, callbacks, optimizers, metrics |
| export | `models.export` | the export layout (no TensorFlow), SavedModel and ONNX writers |
| serving | `models.zoo`, `models.serve`, `models.serving` | exported models in an app, and a TensorFlow-Serving-compatible server (REST, gRPC) |
| lessons | `models.lessons` | the notes' formulas: derivatives, update rules, entropy and the tree |

`models.tensorflow_internals` is the one module that touches TensorFlow's
private API, with a public fallback for each call. The readers (`zoo`,
`serve` and its `serving` parts) import `models.export.layout` and no TensorFlow at
import time (`models.serving.grpc_api`, loaded only for `--grpc-port`, does).
Importing this package imports nothing heavy.
"""
