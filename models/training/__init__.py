"""The training layer: one fast training path for a compiled Keras model, and its helpers.

- `loop`: `fit(model, x, y, ...)`, `model.fit`'s contract with a whole epoch in
  one `tf.function` call; `predict`;
- `distribute`: `tf.distribute` strategies and the same loop over replicas;
- `checkpoints`: resuming an interrupted run from its last saved epoch;
- `callbacks`: `StopAtTarget`, `TerminateOnNonFinite`, `EpochLogger`;
- `optimizers`: Keras's built-in optimizers by the names the CLI takes;
- `evaluation`: test metrics and scikit-learn baselines;
- `devices`: choosing the CPU or the GPU, and importing TensorFlow quietly.

May import: TensorFlow and Keras, `models.data`, `models.export.layout` (file
flushing and process checks), `models.tensorflow_internals`. `distribute`,
`optimizers` and `devices` import TensorFlow inside their functions only, so
the CLI's option checks stay cheap; `training.fit` and `training.predict` are
`loop`'s, loaded on first use.
"""


def __getattr__(name):
    if name in ("fit", "predict"):
        from models.training import loop

        return getattr(loop, name)
    raise AttributeError(f"module 'models.training' has no attribute {name!r}")
