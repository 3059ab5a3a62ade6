"""WSGI entry point used by ``carina web``."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "carina.config.settings")
application = get_wsgi_application()
