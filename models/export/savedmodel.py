"""The SavedModel export of a trained Keras model, in TensorFlow Serving's layout.

`export(model, ...)` writes the next version folder of `ROOT/NAME/`
(`models.export.layout` says how it is named and published) with

- the SavedModel (`saved_model.pb`, `variables/`, `assets/`) with signature
  `serving_default`: input `features` float32 `[None, n_features]` of raw values
  (NaN for missing) or, for a table with a categorical column, one rank-1
  input per column (float32, or string for a categorical one; `input_specs`);
  outputs `probabilities` float32 `[None, n_classes]` (binary: 2 columns),
  `class_ids` int64 `[None]` and `labels` string `[None]` for classification,
  `predictions` float32 `[None]` for regression;
- `model.keras`, the Keras model, for fine-tuning;
- `model.onnx`, the same serving function in ONNX, for fast prediction and
  apps without TensorFlow (`models.export.onnx_model`; best effort: when it
  cannot be converted the folder has no ONNX file and `metadata.json`'s `onnx`
  says why);
- `metadata.json`, what the model is and how it was made;
- whatever else the caller adds (history, figures).

`tensorflow/serving --model_base_path=ROOT/NAME` serves it as it is.
"""

from __future__ import annotations

from models.export import layout, onnx_model

def input_specs(model):
    """The signature's inputs: `features` `[None, n]` float32, or one rank-1 spec per column input.

    Returns:
        A `tf.TensorSpec` (a matrix model) or a dict of them, by input name.
    """
    import tensorflow as tf

    if len(model.inputs) == 1 and model.inputs[0].name == layout.INPUT:
        return tf.TensorSpec([None, model.inputs[0].shape[-1]], tf.float32, name=layout.INPUT)
    return {t.name: tf.TensorSpec([None], tf.string if t.dtype == "string" else tf.float32,
                                  name=t.name)
            for t in model.inputs}


def serving_function(model, task, class_names=None):
    """The `serving_default` function of `model`: raw inputs in, named outputs out.

    The inputs are `input_specs(model)`: the `features` matrix, or one named
    rank-1 input per column for a table with a categorical column.
    """
    import tensorflow as tf

    spec = input_specs(model)
    if task == "regression":

        @tf.function(input_signature=[spec])
        def serve(features):
            return {"predictions": tf.reshape(model(features, training=False), [-1])}

        return serve
    labels = tf.constant([str(c) for c in class_names])

    @tf.function(input_signature=[spec])
    def serve(features):
        outputs = model(features, training=False)
        if task == "binary":
            outputs = tf.concat([1.0 - outputs, outputs], axis=1)
        class_ids = tf.argmax(outputs, axis=1, output_type=tf.int64)
        return {
            "probabilities": outputs,
            "class_ids": class_ids,
            "labels": tf.gather(labels, class_ids),
        }

    return serve


def servable(model, serve):
    """What the SavedModel holds: `serve`'s graph and only the state it reads.

    A `tf.Module` that tracks the variables `serve` captures and the lookup
    tables of the model's layers (`StringLookup`'s), so that
    `tf.saved_model.save` writes them and a loader restores them, and nothing
    else: Keras's `ExportArchive` walks every layer's attributes and traces
    their functions to find the same state, about 0.1 s more per export on
    2 cores for the models here. The ONNX conversion freezes the same object
    (`models.export.onnx_model.convert`).

    Args:
        model: the Keras model `serve` calls.
        serve: its `serving_function`.

    Returns:
        The `tf.Module`, with the signature's concrete function as `.signature`.
    """
    import tensorflow as tf

    module = tf.Module()
    module.signature = serve.get_concrete_function()
    module.state = list(module.signature.variables)
    for i, table in enumerate(_tables(model)):  # attributes, where tf2onnx looks for tables
        setattr(module, f"table_{i}", table)
    return module


def _tables(model):
    """The lookup tables (`TrackableResource`s) the model's layers hold."""
    import tensorflow as tf

    return [value for layer in model._flatten_layers(include_self=False)
            for value in vars(layer).values()
            if isinstance(value, tf.saved_model.experimental.TrackableResource)]


def write_savedmodel(model, path, task, class_names=None, *, serve=None):
    """Writes `model` as a SavedModel with the `serving_default` signature at `path`.

    `serve` is the signature's function when the caller has made it already
    (`serving_function`).

    Returns:
        The `servable` written: what `models.export.onnx_model.write` converts.
    """
    import tensorflow as tf

    module = servable(model, serve or serving_function(model, task, class_names))
    tf.saved_model.save(module, str(path), signatures={layout.SIGNATURE: module.signature})
    return module


def export(model, *, output_dir, name, task, class_names=None, metadata=None, write_extra=None,
           check_feed=None):
    """Exports a Keras `model` as the next version of `output_dir/name`, whole or not at all.

    Args:
        model: a trained Keras model taking raw features.
        output_dir: the export root, e.g. `"saved_models"`.
        name: the model's folder name (the recipe's name).
        task: `binary`, `multiclass` or `regression`.
        class_names: the label of each class (classification).
        metadata: fields for `metadata.json`; `version`, `task`, `class_names`,
            `tensorflow_version`, `keras_version`, `onnx` and `created_at` are filled in.
        write_extra: `callable(folder)` that adds files (history, figures) before
            the folder is renamed into place. Defaults to `None`.
        check_feed: raw inputs the ONNX file must answer as the SavedModel does
            (held-out rows with missing values and unseen categories; see
            `models.data.prepared.PreparedData.check_feed`). Defaults to `None`:
            random rows.

    Returns:
        The `Path` of the new version folder.
    """
    import keras
    import tensorflow as tf

    def write(folder):
        written = write_savedmodel(model, folder, task, class_names)
        model.save(folder / layout.KERAS_FILE)
        meta["onnx"] = onnx_model.write(folder, check_feed, servable=written)
        if write_extra is not None:
            write_extra(folder)

    meta = dict(metadata or {})
    meta.update(task=task, tensorflow_version=tf.__version__, keras_version=keras.__version__)
    if class_names is not None:
        meta["class_names"] = [str(c) for c in class_names]
    return layout.write_version(output_dir, name, write, meta)
