"""The one ingest pipeline (see :mod:`carina.archive.ingest.pipeline`)."""

from carina.archive.ingest.errors import IngestError
from carina.archive.ingest.pipeline import IngestResult, IngestStatus, Origin, ingest

__all__ = ["IngestError", "IngestResult", "IngestStatus", "Origin", "ingest"]
