"""The web application's views, one module per area (docs/ui.md)."""
