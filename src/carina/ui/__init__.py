"""The web application: server-rendered pages (Django templates + HTMX) for technologists,
radiologists and administrators (docs/ui.md)."""
