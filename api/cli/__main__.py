"""``python -m api.cli`` runs the ``huegis`` command line."""

from api.cli import app

app()
