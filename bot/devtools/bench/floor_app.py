"""The floor: a Flask app that reads the webhook body and answers 200, nothing else.

Served by gunicorn with the bot's own flags, it shows what acknowledging costs before the bot
does any work of its own (signature, parsing, the durable store)::

    gunicorn --worker-class bot.web.gunicorn_worker.BufferingThreadWorker ... \
        bot.devtools.bench.floor_app:app
"""

from __future__ import annotations

from flask import Flask, request

app = Flask(__name__)


@app.post("/webhooks")
def webhook() -> tuple[str, int]:
    """Read the body, as any endpoint must, and acknowledge."""
    request.get_data(cache=False)
    return "", 200


@app.get("/healthz")
def healthz() -> tuple[str, int]:
    """Lets the launcher see the floor is up."""
    return "", 200
