"""The meeting key every bot the tests start runs with (MEETING_KEYS): fixed, and readable as a
test's, so a log line or a store dump that shows it is easy to spot."""

from bot.meetings.sealing import Keyring

MEETING_KEYS = "test-meeting-key-for-the-bots-own-tests-000"
TEST_KEYRING = Keyring.parse(MEETING_KEYS)
