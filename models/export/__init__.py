"""The export layer: version folders in TensorFlow Serving's layout.

- `layout`: the contract (file names, signature and output names, version
  folders, whole-or-nothing publishing); standard library only, for readers
  and writers alike;
- `savedmodel`: a trained Keras model written as a SavedModel, `model.keras`
  and `metadata.json` (TensorFlow);
- `onnx_model`: the same serving function as `model.onnx` (tf2onnx), checked
  against TensorFlow before it is kept;
- `tree`: a `models.lessons.tree.DecisionTree` written as a SavedModel (the
  tree as TensorFlow ops) and `model.onnx` (`ai.onnx.ml` tree ensemble).

May import: `models.export.layout` everywhere; TensorFlow, Keras, tf2onnx and
onnx in the writers only; `models.tensorflow_internals`. Readers (`models.zoo`,
`models.serve`) import `layout` and nothing else of this package.
"""
