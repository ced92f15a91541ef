"""The built-in command groups of ``itglue-ingest`` (one module each, see pipeline.cli)."""
