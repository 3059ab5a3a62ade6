"""Serializers of the REST API: how each resource looks as JSON."""
