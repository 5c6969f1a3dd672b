"""The gunicorn entry point: ``gunicorn bot.web.wsgi:app`` builds the bot from the environment."""

from bot import logs
from bot.service import BotService
from bot.settings import Settings
from bot.web.app import create_app

settings = Settings.from_env()
logs.configure(settings.log_level or "INFO", secrets=settings.secret_values())
app = create_app(BotService(settings))
