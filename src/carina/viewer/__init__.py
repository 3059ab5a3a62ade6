"""The OHIF diagnostic viewer, served at ``/viewer/`` and reading ``/dicomweb`` on the same
origin (``build`` rewrites the npm package; ``views`` serves it)."""
