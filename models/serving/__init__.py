"""The server behind `python -m models.serve`, by part.

- `store`: models, versions, labels, status, signature defs, the model call (shared);
- `signatures`: a SavedModel's signature defs, read without TensorFlow;
- `json_tensor`: TensorFlow Serving's JSON request and answer forms;
- `rest`: the HTTP/1.1 server (TensorFlow-free);
- `grpc_api`: the gRPC services (imports TensorFlow's protos; only for `--grpc-port`).
"""
