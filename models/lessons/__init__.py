"""The lesson layer: the notes' formulas as code a recipe calls and a learner can poke.

- `activations`: activation values and derivatives by `tf.GradientTape`, closed
  forms, per-layer gradient norms and slopes (single neuron, activations,
  vanishing gradient);
- `update_rules`: SGD, Momentum, AdaGrad, RMSProp and Adam in NumPy, equal to
  Keras's optimizers;
- `optimization`: the one-weight gradient-descent walk, timings, reference
  rules against Keras;
- `regularization`: accuracies, Σw², the L2 penalty by hand;
- `losses`: the loss table's formulas in NumPy (cross-entropies, MSE, MAE, Huber);
- `forward`: an MLP's forward pass by hand, z = a·W + b and f(z) layer by layer;
- `tree`: entropy, information gain and a decision tree grown by it.

May import: NumPy, scikit-learn, TensorFlow and Keras, `models.data`,
`models.training`. Never the recipes, the export layer or the server.
"""
