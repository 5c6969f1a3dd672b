"""The gunicorn entry point: ``gunicorn bot.web.wsgi:app`` builds a web process of the bot from
the environment. It only verifies, stores and answers; ``python -m bot work`` does the work
(``python -m bot serve`` runs both). Requests on ``METRICS_PORT`` get the metrics instead."""

from bot import logs
from bot.metrics import record, scrape
from bot.service import BotService
from bot.settings import Settings
from bot.web.app import create_app

settings = Settings.from_env()
logs.configure(settings.log_level or "INFO", secrets=settings.secret_values())
service = BotService(settings, role="web")
app = scrape.beside(create_app(service), settings.server.metrics_port, service.store)
record.process_alive("web")
