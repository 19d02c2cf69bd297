"""WSGI entry point (gunicorn ``preflab.wsgi:application``)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "preflab.settings")
application = get_wsgi_application()
