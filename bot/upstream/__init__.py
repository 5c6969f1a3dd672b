"""The upstream clients: Webex, Instant Connect, bounded retries."""
