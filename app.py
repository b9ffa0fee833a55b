"""WSGI entry point: ``app = create_app()`` (e.g. ``gunicorn app:app``)."""
from gridmap import create_app

app = create_app()
