"""The signature defs of a SavedModel, read from `saved_model.pb` without TensorFlow.

TensorFlow Serving's metadata answer lists every signature of the SavedModel's
meta graph (`get_model_metadata_impl.cc`, `SavedModelGetSignatureDef`),
`__saved_model_init_op` included, as protobuf's JSON printer writes them
(`http_rest_api_util.cc`, `ToJsonString`: field names as in the `.proto`,
fields without presence always printed). The REST server must stay free of
TensorFlow for ONNX exports, so this module decodes the few messages it needs
(`SavedModel` → `MetaGraphDef.signature_def` → `SignatureDef` → `TensorInfo` →
`TensorShapeProto`) straight from protobuf's wire format, into that JSON form.
The gRPC server turns the same dicts into `SignatureDefMap` protos.

Example:

>>> from models.serving import signatures
>>> signatures.read_signature_defs("no/such/folder")
Traceback (most recent call last):
...
FileNotFoundError: no/such/folder/saved_model.pb
"""

from __future__ import annotations

from pathlib import Path

DTYPES = {
    0: "DT_INVALID", 1: "DT_FLOAT", 2: "DT_DOUBLE", 3: "DT_INT32", 4: "DT_UINT8", 5: "DT_INT16",
    6: "DT_INT8", 7: "DT_STRING", 8: "DT_COMPLEX64", 9: "DT_INT64", 10: "DT_BOOL", 14: "DT_BFLOAT16",
    17: "DT_UINT16", 18: "DT_COMPLEX128", 19: "DT_HALF", 20: "DT_RESOURCE", 21: "DT_VARIANT",
    22: "DT_UINT32", 23: "DT_UINT64",
}
"""`tensorflow.DataType` names by number (`types.proto`)."""


def read_signature_defs(folder):
    """The signature defs of `folder/saved_model.pb`'s first meta graph, as JSON-ready dicts.

    Args:
        folder: a SavedModel folder.

    Returns:
        `{signature_name: {"inputs", "outputs", "method_name", "defaults"}}`, each
        input and output `{"dtype", "tensor_shape", "name"}`, as TensorFlow
        Serving prints them (`"defaults"` is always `{}`: exports have none).

    Raises:
        FileNotFoundError: no `saved_model.pb` there.
        ValueError: the file is not a SavedModel protobuf.
    """
    path = Path(folder) / "saved_model.pb"
    if not path.is_file():
        raise FileNotFoundError(str(path))
    data = path.read_bytes()
    try:
        meta_graphs = [v for n, v in _fields(data) if n == 2]  # SavedModel.meta_graphs
        if not meta_graphs:
            raise ValueError("no meta graph")
        found = {}
        for n, entry in _fields(meta_graphs[0]):
            if n == 5:  # MetaGraphDef.signature_def: map<string, SignatureDef>
                key, value = _map_entry(entry)
                found[key] = _signature_def(value)
        return found
    except (ValueError, IndexError, UnicodeDecodeError) as error:
        raise ValueError(f"{path} is not a SavedModel protobuf: {error}") from None


def _signature_def(data):
    signature = {"inputs": {}, "outputs": {}, "method_name": "", "defaults": {}}
    for n, value in _fields(data):
        if n in (1, 2):  # inputs, outputs: map<string, TensorInfo>
            key, info = _map_entry(value)
            signature["inputs" if n == 1 else "outputs"][key] = _tensor_info(info)
        elif n == 3:
            signature["method_name"] = value.decode("utf-8")
    return signature


def _tensor_info(data):
    info = {"dtype": DTYPES[0]}
    for n, value in _fields(data):
        if n == 1:
            info["name"] = value.decode("utf-8")
        elif n == 2:
            info["dtype"] = DTYPES.get(value, str(value))
        elif n == 3:
            info["tensor_shape"] = _shape(value)
    return info


def _shape(data):
    shape = {"dim": [], "unknown_rank": False}
    for n, value in _fields(data):
        if n == 2:  # TensorShapeProto.dim
            dim = {"size": "0", "name": ""}
            for m, v in _fields(value):
                if m == 1:
                    dim["size"] = str(v - (1 << 64) if v >= 1 << 63 else v)  # int64, two's complement
                elif m == 2:
                    dim["name"] = v.decode("utf-8")
            shape["dim"].append(dim)
        elif n == 3:
            shape["unknown_rank"] = bool(value)
    return shape


def _map_entry(data):
    key, value = "", b""
    for n, v in _fields(data):
        if n == 1:
            key = v.decode("utf-8")
        elif n == 2:
            value = v
    return key, value


def _fields(data):
    """`(field_number, value)` of one message: ints for varints, bytes for length-delimited."""
    i, end = 0, len(data)
    while i < end:
        tag, i = _varint(data, i)
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            value, i = _varint(data, i)
        elif wire == 2:
            length, i = _varint(data, i)
            if i + length > end:
                raise ValueError("truncated field")
            value, i = data[i:i + length], i + length
        elif wire == 1:
            value, i = data[i:i + 8], i + 8
        elif wire == 5:
            value, i = data[i:i + 4], i + 4
        else:
            raise ValueError(f"wire type {wire}")
        yield number, value


def _varint(data, i):
    result = shift = 0
    while True:
        byte = data[i]
        i += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, i
        shift += 7
