"""The DIMSE adapter: Carina's DICOM listener (C-ECHO, C-STORE SCP), the known remote nodes of
each hospital, and a small SCU library. It translates DICOM network messages into calls of the
archive (the ingest pipeline) and holds no archive logic of its own (DESIGN.md §2)."""
