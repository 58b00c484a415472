"""Generated protobuf and gRPC code of proto/waterflow/v1/*.proto; regenerate with `nox -s proto`."""
