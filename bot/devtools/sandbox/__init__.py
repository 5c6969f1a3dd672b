"""A local emulator of the Webex REST API and the Instant Connect broker (see ``Sandbox``).

It also stands for an SMTP relay and for Twilio's Messages API.
"""

from .faults import Fault
from .journal import Delivery, Recorded
from .mail import ReceivedMail, SmtpFault, SmtpSession
from .responses import ApiError
from .sandbox import Sandbox
from .sms import SentSms, TwilioFault

__all__ = [
    "ApiError",
    "Delivery",
    "Fault",
    "ReceivedMail",
    "Recorded",
    "Sandbox",
    "SentSms",
    "SmtpFault",
    "SmtpSession",
    "TwilioFault",
]
