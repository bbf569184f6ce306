"""The hospital party node: its data, its local statistics and its gRPC service."""
