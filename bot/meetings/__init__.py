"""The meetings the bot remembers."""
