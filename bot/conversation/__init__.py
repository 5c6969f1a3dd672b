"""The conversation: what the bot says and does for each event."""
