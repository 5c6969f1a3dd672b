"""The upstream clients: Webex, Instant Connect, mail (SMTP), SMS (Twilio), bounded retries."""
