"""A local emulator of the Webex REST API and the Instant Connect broker (see ``Sandbox``)."""

from .faults import Fault
from .journal import Delivery, Recorded
from .responses import ApiError
from .sandbox import Sandbox

__all__ = ["ApiError", "Delivery", "Fault", "Recorded", "Sandbox"]
