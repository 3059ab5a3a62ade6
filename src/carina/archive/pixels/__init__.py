"""Pixel data: frames, transcoding and rendering of stored instances."""
