"""The study coordinator: runs a study against the party nodes and releases its results."""
