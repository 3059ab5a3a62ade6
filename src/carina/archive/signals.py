"""Signals the archive sends after a commit; domain apps (routing, audit, …) connect to them."""

from django.dispatch import Signal

#: Sent after the transaction that indexed an instance has committed.
#: Arguments: ``hospital_id``, ``instance_id``, ``series_id``, ``status``
#: (an :class:`carina.archive.ingest.IngestStatus`), ``origin``, ``size_bytes`` (the
#: object's size) and ``seconds`` (how long ``ingest()`` took, from the first byte read to
#: the indexing; the metrics of carina.ops use them).
instance_stored = Signal()
