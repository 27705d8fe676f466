"""The private TensorFlow call the package makes, with a public fallback.

Everything else in the package uses TensorFlow's public API. This one has no
public form; it is imported here by name at call time, its shape checked, and
when it is missing or has changed the caller gets the public behaviour instead:
the run gets slower, it never breaks.

| call | module | what it buys (2-core CPU, TF 2.21) | without it |
|---|---|---|---|
| `ConcreteFunction._call_flat` with other captured inputs | `tensorflow.python.eager.polymorphic_function.concrete_function` | a twin (same architecture, e.g. `early-stopping`'s three models) runs the first one's traced epoch on its own variables instead of tracing again (`models.training.twins`): about 0.25 s a twin; and a model's own traced epoch is called without the `tf.function`'s argument binding and trace lookup, about 0.15 ms an epoch (`models.training.loop._direct`) | each fit traces its own epoch, and calls it through the `ConcreteFunction`: same numbers, slower |
| `FunctionCallOptions` with grappler off and an executor | `tensorflow.python.eager.context`, `tensorflow.core.protobuf.config_pb2` | a small model's epoch skips graph optimization and runs on the single-threaded executor: the digits 64-64 MLP's first epoch 0.30 → 0.17 s, later epochs 6.2 → 4.7 ms (`models.training.loop.is_lean`) | TensorFlow's default call options: same numbers, that much slower |

The ONNX export (`models.export.onnx_model`) freezes the serving function's
variables with tf2onnx's own loader (`tf_loader.from_trackable`), which calls
`tensorflow.python.framework.convert_to_constants` itself; when that is missing
the export has no `model.onnx`, `metadata.json`'s `onnx` says why, and the zoo
runs the SavedModel.

`tests/test_architecture.py` runs a recipe end to end with the private modules made
unimportable, and checks that no other module of the package imports
`tensorflow.python` or `tensorflow.core`.
"""

from __future__ import annotations

import contextlib
import importlib

CONTEXT = "tensorflow.python.eager.context"
CONFIG_PB2 = "tensorflow.core.protobuf.config_pb2"
CONVERT_TO_CONSTANTS = "tensorflow.python.framework.convert_to_constants"
CONCRETE_FUNCTION = "tensorflow.python.eager.polymorphic_function.concrete_function"
PRIVATE_MODULES = (CONTEXT, CONFIG_PB2, CONVERT_TO_CONSTANTS, CONCRETE_FUNCTION)
"""The private modules used here or by tf2onnx's freezing, by name (the tests block exactly these)."""


def call_options(executor_type=""):
    """A reusable context manager: function calls inside it skip grappler, on `executor_type`.

    The options are thread-local and must be the same at every call of one
    `tf.function` (TensorFlow keeps one instance of a function per call
    options). `executor_type` is `""` (the default executor) or
    `"SINGLE_THREADED_EXECUTOR"`.

    Returns:
        The context manager, or `contextlib.nullcontext()` when the private
        API is unavailable (TensorFlow's default options: same numbers, slower).
    """
    try:
        context = importlib.import_module(CONTEXT)
        config_pb2 = importlib.import_module(CONFIG_PB2)
        ctx = context.context()
        config = config_pb2.ConfigProto()
        config.ParseFromString(ctx.function_call_options.config_proto_serialized)
        config.graph_options.rewrite_options.disable_meta_optimizer = True
        options = context.FunctionCallOptions(executor_type=executor_type, config_proto=config)
    except (ImportError, AttributeError, TypeError, ValueError):
        return contextlib.nullcontext()
    return _CallOptions(ctx, options)


class _CallOptions:
    """Sets the thread's function call options inside the block."""

    def __init__(self, ctx, options):
        self._ctx = ctx
        self.options = options
        self._saved = []

    def __enter__(self):
        self._saved.append(self._ctx.function_call_options)
        self._ctx.function_call_options = self.options

    def __exit__(self, *exc):
        self._ctx.function_call_options = self._saved.pop()


def can_call_with_captures():
    """Whether `call_with_captures` can run (TensorFlow's `ConcreteFunction._call_flat` is there)."""
    try:
        module = importlib.import_module(CONCRETE_FUNCTION)
        return callable(getattr(module.ConcreteFunction, "_call_flat", None))
    except (ImportError, AttributeError):
        return False


def call_with_captures(concrete, inputs, captures):
    """Calls the traced `concrete` function on `inputs` with `captures` as its captured inputs.

    `captures` replaces `concrete.captured_inputs` one for one (e.g. another model's
    variable handles, shaped alike): the traced graph runs on other state without
    being traced again (`models.training.twins`). Callers check
    `can_call_with_captures()` first.

    Returns:
        The function's structured outputs.
    """
    return concrete._call_flat(list(inputs), list(captures))
