"""Ingestion: sources (folder, WARC) -> face pipeline -> store + index; resumable."""
