"""The web edge: the Flask app, the gunicorn entry and worker, the webhook intake."""
