"""Generated protobuf and gRPC modules (``make protos``); do not edit by hand."""
