"""Carina PACS: a Picture Archiving and Communication System."""

__version__ = "0.1.0"
