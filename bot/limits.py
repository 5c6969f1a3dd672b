"""Limits and defaults that several parts of the bot share, each defined once.

Instant Connect makes 0 to 25 host and 0 to 25 guest links, at most 25 in all, and dials in at
most 25 devices; the sentences say so the same way wherever a request is checked. The bot's own
defaults: links valid for two hours, a meeting 30 minutes long (its links open 10 minutes
before its start and work until at least 30 minutes after its end), 64 job threads in a worker
process (they mostly wait on Webex and the broker, see the README's Performance section), and
20 s for one answer from any service the bot calls (WEBEX_TIMEOUT and IC_READ_TIMEOUT change
it for Webex and the broker).
"""

from datetime import timedelta

MAX_LINKS = 25
MAX_DEVICES = 25
LINK_COUNT_RANGE = f"Must be a whole number from 0 to {MAX_LINKS}."
TOO_MANY_LINKS = f"Hosts and guests together can be at most {MAX_LINKS}."
NO_LINKS = "Ask for at least one host or guest link."
TOO_MANY_DEVICES = f"At most {MAX_DEVICES} devices can be dialled in."

MAX_CONTACTS = 10  # guests reached by email or SMS per meeting: no bulk mail through the bot

DEFAULT_VALID_FOR = "2h"
MIN_VALIDITY = timedelta(minutes=5)  # how long links may stay valid, in the chat and as default
MAX_VALIDITY = timedelta(days=30)
VALIDITY_RANGE = "from 5 minutes to 30 days"
DEFAULT_DURATION = "30m"  # how long a meeting is when nobody says, in the form and with meet
MIN_DURATION = timedelta(minutes=5)
MAX_DURATION = timedelta(hours=12)  # a hearing or a clinic's whole session, not a week
DURATION_RANGE = "from 5 minutes to 12 hours"
JOIN_EARLY = timedelta(minutes=10)  # links of a meeting that starts later open this much before
AFTER_END = timedelta(minutes=30)  # and work at least this long after it ends: meetings overrun
WORKER_THREADS = 64
UPSTREAM_TIMEOUT = 20.0  # seconds one answer from Webex, the broker, SMTP or Twilio may take
# On SIGTERM a web process may finish its requests this long (gunicorn's --graceful-timeout);
# serve waits for it and a margin before it kills what is left.
GRACEFUL_STOP_SECONDS = 30
