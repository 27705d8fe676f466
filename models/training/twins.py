"""One traced epoch for every variant of one architecture: twins share the trace.

A lesson that compares variants often trains the same network several times,
each from the same seed: `early-stopping` trains one model three times (only the
callbacks differ), `regularization` trains the plain network and the early-stopped
one. Each `fit` traced its own epoch function, and each trace costs a quarter of a
second or more of Python on 2 CPU cores (plus the graph's set-up at its first call).

Here a traced epoch is kept with the model it was traced for (the *template*). A
later `fit` of a *twin* — a model with the same layers and configuration (names
aside), compiled the same way, on data of the same shapes and the same batch size —
calls the template's traced function with the twin's own state in place of the
template's: every variable the graph reads or writes (weights, seed generators,
optimizer slots and counters, metric totals), the training and validation rows,
and the tensors a layer holds (a `Normalization` layer's mean and variance). The
graph is the same, so the twin's numbers are the ones its own trace gives, bit for bit
(`tests/test_performance.py`). A function whose every input cannot be matched this
way is not shared: the twin traces its own, as before.

The swap of a traced function's captured inputs goes through TensorFlow's private
`ConcreteFunction._call_flat` (`models.tensorflow_internals.call_with_captures`);
without it every fit traces its own epoch, as before.
"""

from __future__ import annotations

import collections
import json

import keras
import tensorflow as tf

from models import tensorflow_internals

KEPT = 4
"""Traced epochs kept for later twins (the most recent ones)."""

_kept = collections.OrderedDict()  # signature -> [Template, ...], oldest first


class Template:
    """A traced epoch function and what it was traced over.

    Args:
        model: the model the function was traced for.
        tensors: the tensors it captures by closure (training and validation rows), in order.
        concrete: the traced `ConcreteFunction`.
        call_options: the context manager its calls run in (`models.training.loop.calling`).
        function: the `tf.function` it is a trace of (for inspection).
    """

    def __init__(self, model, tensors, concrete, call_options, function=None):
        self.model = model
        self.tensors = list(tensors)
        self.concrete = concrete
        self.call_options = call_options
        self.function = function
        self._description = None

    def description(self):
        """The template model's architecture and compilation, names replaced by their order."""
        if self._description is None:
            self._description = describe(self.model)
        return self._description


def signature(model, tensors, batch, lean):
    """A cheap key: a twin must have the same one (the full comparison comes after)."""
    return (
        type(model).__name__, type(model.optimizer).__name__, batch, lean,
        tuple((tuple(v.shape), str(v.dtype)) for v in _state(model)),
        tuple((tuple(t.shape), t.dtype.name) for t in tensors),
        tuple((type(layer).__name__, getattr(getattr(layer, "activation", None), "__name__", None))
              for layer in _layers(model)),  # e.g. variants that differ by activation
        keras.config.dtype_policy().name,
    )


def keep(key, template):
    """Keeps `template` for later twins under `key` (a `signature`); the `KEPT` newest stay."""
    _kept.setdefault(key, []).append(template)
    _kept.move_to_end(key)
    while sum(map(len, _kept.values())) > KEPT:
        oldest = next(iter(_kept))
        _kept[oldest].pop(0)
        if not _kept[oldest]:
            del _kept[oldest]


def forget():
    """Drops every kept template (and the models they hold)."""
    _kept.clear()


def find(key, model, tensors):
    """The template `model` is a twin of, and the captures that run it on `model`'s state.

    Returns:
        `(template, captures)`, or `None` when no kept template fits.
    """
    if not tensorflow_internals.can_call_with_captures():
        return None
    ours = None
    for template in reversed(_kept.get(key, [])):  # the newest first
        if template.model is model:
            continue
        try:
            ours = describe(model) if ours is None else ours
            if ours != template.description():
                continue
            captures = _captures(template, model, tensors)
        except Exception:  # noqa: BLE001  a model that cannot be described or matched traces its own
            continue
        if captures is not None:
            return template, captures
    return None


def run(template, captures, order):
    """Runs the template's epoch on the twin's `captures` for the row order `order`."""
    with template.call_options:
        return tensorflow_internals.call_with_captures(template.concrete, [order], captures)


def describe(model):
    """The model's configuration and compilation as text, with every name replaced by its order.

    Two models that differ only in their (and their layers') names describe alike.
    """
    description = {
        "model": model.get_config(),
        "compile": model.get_compile_config(),
        "optimizer": model.optimizer.get_config(),
        "policy": keras.config.dtype_policy().name,
    }
    names = {}
    for name in [model.name, model.optimizer.name, *_layer_names(description["model"]),
                 *(layer.name for layer in _layers(model)), *(v.name for v in _state(model))]:
        names.setdefault(name, f"<{len(names)}>")
    return json.dumps(_renamed(description, names), sort_keys=True, default=repr)


def _layer_names(config):
    """The names of the layers a model's configuration lists (input layers included)."""
    found = []
    if isinstance(config, dict):
        for key, value in config.items():
            if key == "layers" and isinstance(value, list):
                for entry in value:
                    if isinstance(entry, dict):
                        inner = entry.get("config", {})
                        found += [n for n in (entry.get("name"), inner.get("name"))
                                  if isinstance(n, str)]
            found += _layer_names(value)
    elif isinstance(config, list):
        for value in config:
            found += _layer_names(value)
    return found


def _renamed(value, names):
    if isinstance(value, dict):
        return {k: _renamed(v, names) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_renamed(v, names) for v in value]
    if isinstance(value, str):
        return names.get(value, value)
    return value


def _layers(model):
    """`model` and every layer inside it, depth first, in order."""
    found = [model]
    for layer in getattr(model, "layers", ()):
        found += _layers(layer)
    return found


def _state(model):
    """Every variable a training step reads or writes, in a fixed order."""
    return [*model.variables, *model.optimizer.variables, *model.metrics_variables]


def _handle(variable):
    return (variable.value if isinstance(variable, keras.Variable) else variable).handle


def _captures(template, model, tensors):
    """The template function's captured inputs, each replaced by the twin's (`None`: one has none)."""
    replacement = {}
    theirs, ours = _state(template.model), _state(model)
    if len(theirs) != len(ours):
        return None
    for a, b in zip(theirs, ours):
        if tuple(a.shape) != tuple(b.shape) or a.dtype != b.dtype:
            return None
        replacement[id(_handle(a))] = _handle(b)
    if len(template.tensors) != len(tensors):
        return None
    for a, b in zip(template.tensors, tensors):
        replacement[id(a)] = b
    theirs, ours = _layers(template.model), _layers(model)
    if len(theirs) != len(ours):
        return None
    for a, b in zip(theirs, ours):  # tensors a layer holds, e.g. Normalization's mean
        for attribute, value in vars(a).items():
            if isinstance(value, tf.Tensor) and value.dtype != tf.resource:
                other = vars(b).get(attribute)
                if not isinstance(other, tf.Tensor) or other.shape != value.shape \
                        or other.dtype != value.dtype:
                    return None
                replacement[id(value)] = other
    captures = []
    for captured in template.concrete.captured_inputs:
        if id(captured) not in replacement:
            return None  # something of the template's we cannot match: no sharing
        captures.append(replacement[id(captured)])
    return captures
