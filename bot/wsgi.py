"""The gunicorn entry point: ``gunicorn bot.wsgi:app`` builds the bot from the environment."""

import os

from bot import logs
from bot.app import create_app
from bot.service import BotService
from bot.settings import Settings

settings = Settings.from_env(os.environ)
logs.configure(settings.log_level or "INFO", secrets=settings.secret_values())
app = create_app(BotService(settings))
