"""The Flask edge: the only module that imports Flask. It translates HTTP to the core and back.

Usage::

    app = create_app(service=BotService(settings))   # tests pass a service built on the sandbox

Routes: ``POST <WEBHOOK_PATH>`` (default ``/webhooks``; not with ``EVENTS=websocket``),
``POST /twilio/status`` (Twilio's status callbacks, when the bot sends texts and has a
``PUBLIC_URL``),
``GET /healthz`` (the process is alive) and ``GET /readyz`` (the token works, the store answers,
a worker process said it is alive, and the websocket is connected when the bot listens on one).
"""

from __future__ import annotations

from flask import Flask, Response, jsonify, request

from bot.metrics import record
from bot.service import BotService
from bot.web.sms_status import SMS_STATUS_PATH


def create_app(service: BotService) -> Flask:
    """A Flask app serving one bot service, which it starts."""
    app = Flask(__name__)
    settings = service.settings
    # Flask refuses a larger Content-Length with 413 before reading. A chunked body is instead
    # cut at this many bytes without an error, so allow one byte more: the intake then sees
    # that it is too large and answers 413 itself.
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes + 1

    intake = service.intake
    if intake is not None:  # EVENTS=websocket: no webhook route, the health endpoints only

        @app.post(settings.webhook_path)
        def webhook() -> tuple[Response, int]:
            # Werkzeug's Headers is no Mapping (it iterates over pairs); read from the WSGI
            # environ its names are unique, so a plain dict of them loses nothing.
            headers = dict(request.headers.items())
            reply = intake.receive(request.get_data(cache=False), headers)
            return jsonify(reply.body), reply.status

    text_status = service.text_status
    if text_status is not None:

        @app.post(SMS_STATUS_PATH)
        def sms_status() -> tuple[Response, int]:
            reply = text_status.receive(request.form.to_dict(flat=False),
                                        dict(request.headers.items()))
            return jsonify(reply.body), reply.status

    @app.errorhandler(413)
    def too_large(_: Exception) -> tuple[Response, int]:
        record.webhook(413, "")  # refused before the intake saw it
        return jsonify({"error": "body too large"}), 413

    @app.get("/healthz")
    def healthz() -> tuple[Response, int]:
        return jsonify({"status": "alive"}), 200

    @app.get("/readyz")
    def readyz() -> tuple[Response, int]:
        problems = service.readiness()
        return jsonify({"status": "ready" if not problems else "not ready",
                        "problems": problems}), 200 if not problems else 503

    service.start()
    app.extensions["instant_connect_bot"] = service
    return app
