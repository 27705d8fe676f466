"""TensorFlow Serving's JSON request and answer forms for `:predict`.

Follows `util/json_tensor.cc`: a request body is parsed with NaN and
Infinity tokens allowed (`ParseJson`, `kParseNanAndInfFlag`); `instances`
(row format) or `inputs` (columnar) name the rows, and an `inputs` object's
keys that the signature does not take are ignored (`FillTensorMapFromInputsMap`
looks up the signature's inputs only). Floats are written as
`WriteDecimal` writes them: six significant digits when that reads back to
the same float32, else nine (`max_digits10`), `.0` added to whole numbers,
`NaN`, `Infinity`, `-Infinity` for the others.

Our extensions, kept: an instance may be a `{feature_name: value}` object, and
`inputs` may be `{feature_name: [values...]}` columns.

Example:

>>> import numpy as np
>>> from models.serving.json_tensor import answer
>>> answer({"predictions": np.float32([0.2, 3, 1 / 3, np.nan])}, ["predictions"], row_format=True)
b'{"predictions":[0.2,3.0,0.333333343,NaN]}'
"""

from __future__ import annotations

import json
import math
import struct

import numpy as np

from models.export.layout import INPUT
from models.serving.store import invalid


def parse(body):
    """A request body as a JSON object; `INVALID_ARGUMENT` as `ParseJson` words it."""
    if not body:
        raise invalid("JSON Parse error: The document is empty")
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError) as error:  # JSONDecodeError, bad UTF-8, absurd nesting
        raise invalid(f"JSON Parse error: {error}") from None
    if not isinstance(doc, dict):
        raise invalid(f"JSON Value: {_short(doc)} Is not object")
    signature = doc.get("signature_name", "")
    if not isinstance(signature, str):
        raise invalid(f"JSON Value: {_short(doc)} not formatted correctly. "
                      "'signature_name' key must be a string value.")
    return doc


def request_rows(doc, model):
    """The rows a parsed `:predict` body sends to `model` (a `zoo.Model`), and whether in row format.

    Returns:
        `(rows, row_format)`: rows for `models.serving.store.feed`.

    Raises:
        ServingError: `INVALID_ARGUMENT`, worded as `FillPredictRequestFromJson`.
    """
    has_instances, has_inputs = "instances" in doc, "inputs" in doc
    if has_instances and has_inputs:
        raise invalid("Not formatted correctly expecting only one of 'inputs' or 'instances' keys to exist")
    matrix = INPUT in model.signature_inputs and INPUT not in model.feature_names  # one `features` input
    if has_instances:
        instances = doc["instances"]
        if not isinstance(instances, list):
            raise invalid("Expecting 'instances' to be an list/array")
        if not instances:
            raise invalid("No values in 'instances' array")
        if not matrix:
            return instances, True  # {input or column: value} objects, or lists of values
        return [inst[INPUT] if isinstance(inst, dict) and list(inst) == [INPUT] else inst
                for inst in instances], True
    if has_inputs:
        return _columns(doc["inputs"], model, matrix), False
    raise invalid("Missing 'inputs' or 'instances' key")


def _columns(inputs, model, matrix):
    if not isinstance(inputs, dict):
        return inputs
    if matrix and INPUT in inputs:
        return inputs[INPUT]  # the signature's input; other keys are ignored, as TF Serving does
    known = set(model.feature_names) | set(model.signature_inputs)
    columns = {k: v for k, v in inputs.items() if k in known}  # others are ignored, as TF Serving does
    if not columns:
        wanted = INPUT if matrix else ", ".join(sorted(model.signature_inputs))
        raise invalid(f"Missing named input: {wanted} in 'inputs' object (or send feature columns: "
                      f"{', '.join(map(repr, model.feature_names[:8]))})")
    if not all(isinstance(c, list) for c in columns.values()) or len({len(c) for c in columns.values()}) != 1:
        raise invalid("'inputs' as columns must be {name: [values...]}, lists of one length")
    return [dict(zip(columns, values)) for values in zip(*columns.values())]


def answer(outputs, names, row_format):
    """The `:predict` answer for `outputs` (`{name: array}`), as UTF-8 JSON bytes.

    Row format: `{"predictions": [...]}`, one value per row with one output,
    else one object per row; columnar: `{"outputs": value}` or `{"outputs":
    {name: value}}` (`MakeJsonFromTensors`).
    """
    rows = {k: _row_texts(np.asarray(outputs[k])) for k in names}
    if row_format:
        if len(names) == 1:
            body = "[" + ",".join(rows[names[0]]) + "]"
        else:
            keys = [json.dumps(k) for k in names]
            body = "[" + ",".join(
                "{" + ",".join(f"{key}:{rows[k][i]}" for key, k in zip(keys, names)) + "}"
                for i in range(len(rows[names[0]]))
            ) + "]"
        return ('{"predictions":' + body + "}").encode("utf-8")
    columns = {k: "[" + ",".join(rows[k]) + "]" for k in names}
    if len(names) == 1:
        body = columns[names[0]]
    else:
        body = "{" + ",".join(f"{json.dumps(k)}:{columns[k]}" for k in names) + "}"
    return ('{"outputs":' + body + "}").encode("utf-8")


SMALL = 256
"""Arrays up to this size are written value by value (NumPy's vectorized strings cost more)."""


def _row_texts(array):
    """The JSON text of each `array[i]`."""
    if array.dtype.kind == "f" and array.size > SMALL:
        return [_nested(t) for t in float_texts(array)]
    single = array.dtype == np.float32
    return [_text(v, single) for v in (array.tolist() if array.ndim else [array.tolist()])]


def _text(value, single):
    if isinstance(value, list):
        return "[" + ",".join(_text(v, single) for v in value) + "]"
    if isinstance(value, float):
        return float_text(value, single)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return json.dumps(value.decode("utf-8") if isinstance(value, bytes) else str(value), ensure_ascii=False)


def float_text(value, single=True):
    """One float as `WriteDecimal` writes it: `float_texts` for a single value."""
    if value != value:
        return "NaN"
    if value in (math.inf, -math.inf):
        return "Infinity" if value > 0 else "-Infinity"
    text = "%g" % value
    back = float(text)
    try:
        same = (struct.unpack("f", struct.pack("f", back))[0] if single else back) == value
    except OverflowError:  # six digits rounded past float32's largest value
        same = False
    if not same:
        text = ("%.9g" if single else "%.17g") % value
    return text if "." in text or "e" in text else text + ".0"


def _nested(texts):
    if np.ndim(texts) == 0:
        return str(texts)
    return "[" + ",".join(_nested(t) for t in texts) + "]"


def float_texts(array):
    """Each float as `WriteDecimal` writes it (`util/json_tensor.cc`), in an array of `str`."""
    flat = np.asarray(array).ravel()
    out = np.empty(flat.shape, dtype="<U26")
    finite = np.isfinite(flat)
    values = flat[finite]
    texts = np.char.mod("%g", values.astype(np.float64)).astype("<U26")
    wide = texts.astype(flat.dtype) != values  # six digits do not read back: max_digits10
    if wide.any():
        digits = 9 if flat.dtype == np.float32 else 17
        texts[wide] = np.char.mod(f"%.{digits}g", values[wide].astype(np.float64))
    plain = (np.char.find(texts, ".") < 0) & (np.char.find(texts, "e") < 0)
    texts[plain] = np.char.add(texts[plain], ".0")
    out[finite] = texts
    out[np.isnan(flat)] = "NaN"
    out[np.isposinf(flat)] = "Infinity"
    out[np.isneginf(flat)] = "-Infinity"
    return out.reshape(np.shape(array))


def _short(value, limit=80):
    text = json.dumps(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
