"""TensorFlow Serving's gRPC API: `PredictionService` and `ModelService`, for the official client.

    python -m models.serve --grpc-port 8500

Built on `grpcio` and the protos of `tensorflow-serving-api`, so
`prediction_service_pb2_grpc.PredictionServiceStub` and
`model_service_pb2_grpc.ModelServiceStub` work unchanged. Each method does
what TensorFlow Serving's does, with its status codes and messages:

- `Predict` (`servables/tensorflow/predict_util.cc`, `RunPredict`): the
  `model_spec`'s name, version or version label, and `signature_name`
  (an unknown one is `FAILED_PRECONDITION`); the request's inputs must be
  the signature's (`VerifyRequestInputsSize`: `INVALID_ARGUMENT`), of its
  dtype; `output_filter` is honoured; outputs are `TensorProto`s written as
  proto fields (`kAsProtoField`); the answer's `model_spec` names the version
  and signature run.
- `Classify` / `Regress`: answered as TensorFlow Serving answers them on a
  predict signature (`classifier.cc`, `regressor.cc`: `INVALID_ARGUMENT`).
- `GetModelMetadata` (`get_model_metadata_impl.cc`): `signature_def`, every
  signature of the SavedModel, in a packed `SignatureDefMap`.
- `ModelService.GetModelStatus` (`model_servers/get_model_status_impl.cc`).

An unknown model or version is `NOT_FOUND`, an unknown label
`INVALID_ARGUMENT` (`server_core.cc`). Importing this module imports
TensorFlow (the protos of `tensorflow-serving-api` import TensorFlow's own
`tensor.proto` and `types.proto` modules), which is why `models.serve` imports
it only for `--grpc-port`. Those messages are reached through the serving
protos' descriptors, not imported by name.
"""

from __future__ import annotations

import concurrent.futures
import logging
import time

import grpc
import numpy as np
from google.protobuf import json_format
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from models.export.layout import INPUT, SIGNATURE
from models.serving.store import ServingError, feed, invalid, method_error, rows_of

MAX_MESSAGE_BYTES = 2**31 - 1
"""TensorFlow Serving's `SetMaxMessageSize(kint32max)`."""

_TENSOR = predict_pb2.PredictRequest.DESCRIPTOR.fields_by_name["inputs"].message_type.fields_by_name["value"]
DATA_TYPE = _TENSOR.message_type.fields_by_name["dtype"].enum_type
"""`tensorflow.DataType`, as the `TensorProto` of a `PredictRequest` refers to it."""


DT = {v.name: v.number for v in DATA_TYPE.values}
"""`tensorflow.DataType` numbers by name (`DT_FLOAT`, ...)."""

NUMPY = {
    DT["DT_FLOAT"]: np.float32, DT["DT_DOUBLE"]: np.float64, DT["DT_INT32"]: np.int32,
    DT["DT_INT64"]: np.int64, DT["DT_INT16"]: np.int16, DT["DT_INT8"]: np.int8,
    DT["DT_UINT8"]: np.uint8, DT["DT_BOOL"]: np.bool_,
}
FIELDS = {
    DT["DT_FLOAT"]: "float_val", DT["DT_DOUBLE"]: "double_val", DT["DT_INT32"]: "int_val",
    DT["DT_INT16"]: "int_val", DT["DT_INT8"]: "int_val", DT["DT_UINT8"]: "int_val",
    DT["DT_INT64"]: "int64_val", DT["DT_BOOL"]: "bool_val", DT["DT_STRING"]: "string_val",
}

_ERROR_CODES = get_model_status_pb2.ModelVersionStatus.DESCRIPTOR.fields_by_name["status"].message_type \
    .fields_by_name["error_code"].enum_type
"""`tensorflow.error.Code`, the type of `StatusProto.error_code`."""

log = logging.getLogger("models.serve")


def to_array(proto):
    """A `TensorProto` as a NumPy array (strings as an object array of `bytes`).

    Raises:
        ServingError: `INVALID_ARGUMENT` for a dtype this server does not take,
            or values that do not fill the shape.
    """
    shape = [d.size for d in proto.tensor_shape.dim]
    count = int(np.prod(shape)) if shape else 1
    if proto.dtype == DT["DT_STRING"]:
        values = np.array(list(proto.string_val), dtype=object)
    elif proto.dtype in NUMPY:
        dtype = NUMPY[proto.dtype]
        if proto.tensor_content:
            values = np.frombuffer(proto.tensor_content, dtype=dtype)
        else:
            values = np.array(getattr(proto, FIELDS[proto.dtype]), dtype=dtype)
    else:
        raise invalid(f"Tensors of dtype {DATA_TYPE.values_by_number[proto.dtype].name} are not taken here")
    if values.size == 1 and count > 1:  # one value stands for all, as in TensorFlow's Tensor::FromProto
        values = np.full(count, values[0], dtype=values.dtype)
    if values.size != count:
        raise invalid(f"Cannot parse tensor from proto: {values.size} values for shape {shape}")
    return values.reshape(shape)


def fill_proto(proto, array, dtype_name):
    """Writes a NumPy array into the `TensorProto` `proto` as `dtype_name`, values in proto fields
    (`AsProtoField`)."""
    dtype = DATA_TYPE.values_by_name[dtype_name].number
    proto.dtype = dtype
    for d in array.shape:
        proto.tensor_shape.dim.add(size=d)
    field = getattr(proto, FIELDS[dtype])
    if dtype == DT["DT_STRING"]:
        field.extend(v if isinstance(v, bytes) else str(v).encode("utf-8") for v in array.ravel())
    else:
        field.extend(array.ravel().tolist())


def _column_rows(arrays):
    """One rank-1 tensor per column input, as `{input: value}` rows for `zoo.Model.feed`."""
    lengths = {len(a) if a.ndim == 1 else -1 for a in arrays.values()}
    if len(lengths) != 1 or -1 in lengths:
        raise invalid(f"Each column input must be rank 1, all of one length; received shapes "
                      f"{ {k: list(a.shape) for k, a in arrays.items()} }")
    columns = {k: [v.decode("utf-8") if isinstance(v, bytes) else v for v in a.tolist()] for k, a in arrays.items()}
    return [dict(zip(columns, values)) for values in zip(*columns.values())]


def _spec(spec):
    """`(name, version, label)` of a `ModelSpec`."""
    choice = spec.WhichOneof("version_choice")
    version = spec.version.value if choice == "version" else None
    label = spec.version_label if choice == "version_label" else None
    return spec.name, version, label


class _Abort(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code, self.message = code, message


def _answering(method):
    """Runs a servicer method; a `ServingError` becomes the gRPC status of its code."""

    def wrapper(self, request, context):
        started = time.perf_counter()
        code = "OK"
        try:
            return method(self, request, context)
        except ServingError as error:
            code, message = error.code, error.message
        except _Abort as error:
            code, message = error.code, error.message
        except Exception as error:  # a bug: the client gets a message, the log the traceback
            log.exception("error answering gRPC %s", method.__name__)
            code, message = "INTERNAL", f"Internal error: {type(error).__name__}: {error}"
        finally:
            log.info('grpc "%s %s" %s %.2fms', method.__name__, getattr(request.model_spec, "name", "-"),
                     code, (time.perf_counter() - started) * 1000)
        context.abort(getattr(grpc.StatusCode, code), message)

    wrapper.__name__ = method.__name__
    wrapper.__doc__ = method.__doc__
    return wrapper


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    """`tensorflow.serving.PredictionService` on a `ModelStore`."""

    def __init__(self, store):
        self.store = store

    @_answering
    def Predict(self, request, context):
        """`predict_util.cc` `RunPredict`, `PreProcessPrediction`, `PostProcessPredictionResult`."""
        name, version, label = _spec(request.model_spec)
        version = self.store.resolve(name, version, label)
        signature = request.model_spec.signature_name or SIGNATURE
        defs = self.store.signature_defs(name, version)
        if signature not in defs:
            raise _Abort("FAILED_PRECONDITION", f'Serving signature key "{signature}" not found.')
        signature_def = defs[signature]
        sent, wanted = set(request.inputs), set(signature_def["inputs"])
        if sent != wanted:
            raise invalid(
                f"input size does not match signature: {len(sent)}!={len(wanted)} len({{{','.join(sorted(sent))}}}) "
                f"!= len({{{','.join(sorted(wanted))}}}). Sent extra: {{{','.join(sorted(sent - wanted))}}}. "
                f"Missing but required: {{{','.join(sorted(wanted - sent))}}}."
            )
        if signature != SIGNATURE:
            raise invalid(f"This server runs the {SIGNATURE!r} signature only, not {signature!r}")
        aliases = list(request.output_filter) or sorted(signature_def["outputs"])
        for alias in aliases:
            if alias not in signature_def["outputs"]:
                raise invalid(f"output tensor alias not found in signature: {alias} Outputs expected to be "
                              f"in the set {{{','.join(sorted(signature_def['outputs']))}}}.")
        if len(set(aliases)) != len(aliases):
            raise invalid(f"duplicate output tensor alias: {next(a for a in aliases if aliases.count(a) > 1)}")
        model, call = self.store.get(name, version)
        arrays = {}
        for i, (key, info) in enumerate(sorted(signature_def["inputs"].items())):
            tensor = request.inputs[key]
            sent = DATA_TYPE.values_by_number[tensor.dtype].name if tensor.dtype in DATA_TYPE.values_by_number \
                else str(tensor.dtype)
            if sent != info["dtype"]:
                raise invalid(f"Expects arg[{i}] to be {_short_dtype(info['dtype'])} but {_short_dtype(sent)} "
                              "is provided")
            arrays[key] = to_array(tensor)
        inputs = feed(model, arrays[INPUT] if list(arrays) == [INPUT] else _column_rows(arrays))
        outputs = call(inputs)
        response = predict_pb2.PredictResponse()
        response.model_spec.name = name
        response.model_spec.version.value = version
        response.model_spec.signature_name = signature
        for alias in aliases:
            fill_proto(response.outputs[alias], np.asarray(outputs[alias]), signature_def["outputs"][alias]["dtype"])
        log.debug("predicted %d rows", rows_of(inputs))
        return response

    @_answering
    def Classify(self, request, context):
        """`classifier.cc` on a predict signature: `INVALID_ARGUMENT`."""
        return self._method_error(request, "classify")

    @_answering
    def Regress(self, request, context):
        """`regressor.cc` on a predict signature: `INVALID_ARGUMENT`."""
        return self._method_error(request, "regress")

    def _method_error(self, request, method):
        name, version, label = _spec(request.model_spec)
        version = self.store.resolve(name, version, label)
        signature = request.model_spec.signature_name or SIGNATURE
        defs = self.store.signature_defs(name, version)
        if signature not in defs:
            raise invalid(f"No signature was found with the name: {signature}")
        raise invalid(method_error(defs[signature], method))

    @_answering
    def GetModelMetadata(self, request, context):
        """`get_model_metadata_impl.cc` `GetModelMetadata`."""
        if not request.HasField("model_spec"):
            raise invalid("Missing ModelSpec")
        if not request.metadata_field:
            raise invalid("GetModelMetadataRequest must specify at least one metadata_field")
        for field in request.metadata_field:
            if field != "signature_def":
                raise invalid(f"Metadata field {field} is not supported")
        name, version, label = _spec(request.model_spec)
        version = self.store.resolve(name, version, label)
        signature_map = json_format.ParseDict(
            {"signature_def": self.store.signature_defs(name, version)}, get_model_metadata_pb2.SignatureDefMap()
        )
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = name
        response.model_spec.version.value = version
        response.metadata["signature_def"].Pack(signature_map)
        return response


class ModelService(model_service_pb2_grpc.ModelServiceServicer):
    """`tensorflow.serving.ModelService`: `GetModelStatus` (reloading config is not offered)."""

    def __init__(self, store):
        self.store = store

    @_answering
    def GetModelStatus(self, request, context):
        """`get_model_status_impl.cc` `GetModelStatusWithModelSpec`: a label does not narrow it."""
        if not request.HasField("model_spec"):
            raise invalid("Missing ModelSpec")
        name, version, _ = _spec(request.model_spec)
        response = get_model_status_pb2.GetModelStatusResponse()
        for v, state, code, message in self.store.status(name, version):
            entry = response.model_version_status.add(version=v)
            entry.state = get_model_status_pb2.ModelVersionStatus.State.Value(state)
            entry.status.error_code = _ERROR_CODES.values_by_name[code].number
            entry.status.error_message = message
        return response


def _short_dtype(name):
    return name[3:].lower() if name.startswith("DT_") else name


class GrpcServer:
    """A bound gRPC server; `start()`, `stop()`; `port` is the one bound."""

    def __init__(self, store, host, port, workers):
        self._server = grpc.server(
            concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="grpc-worker"),
            options=[("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                     ("grpc.max_send_message_length", MAX_MESSAGE_BYTES), ("grpc.so_reuseport", 0)],
        )
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(PredictionService(store), self._server)
        model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(store), self._server)
        address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        try:
            self.port = self._server.add_insecure_port(address)
        except RuntimeError as error:
            raise OSError(f"cannot bind gRPC port {port}: {error}") from None
        if not self.port:
            raise OSError(f"cannot bind gRPC port {port}")
        self._started = False

    def start(self):
        if not self._started:
            self._server.start()
            self._started = True

    def stop(self, grace=1.0):
        self._server.stop(grace).wait(grace + 1)


def serve(store, host, port, *, workers):
    """A `GrpcServer` for `store` bound to `host:port` (not started)."""
    return GrpcServer(store, host, port, workers)
