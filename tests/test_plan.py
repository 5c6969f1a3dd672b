"""What people type, read as they meant it: subjects in any script, counts, forged values, DST."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.conversation.channels import GuestChannel
from bot.conversation.plan import ALREADY_OVER, MeetingPlan, PlanContext, inputs_from_options
from bot.conversation.timewindow import parse_duration
from bot.errors import FieldError, InvalidRequest
from bot.limits import DEFAULT_DURATION
from bot.upstream.instant_connect import MeetingRequest
from cards import inputs as ids
from tests.conftest import CATALOG
from tests.support.guests import FakeMail, ready_channels
from tests.support.guests import channels as channels_of
from tests.support.plans import plan_or_problems

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
PARIS = ZoneInfo("Europe/Paris")
SCOTLAND = "🏴" + "".join(chr(0xE0000 + ord(letter)) for letter in "gbsct") + "\U000e007f"


def plan(
    inputs: Mapping[str, object], *, now: datetime = NOW, tz: ZoneInfo = PARIS
) -> MeetingPlan:
    """A plan from these inputs (a subject by default); fails the test if there are problems."""
    outcome = plan_or_problems({ids.SUBJECT: "Consultation", **inputs},
                               PlanContext(CATALOG, tz, now, group_space=False))
    assert isinstance(outcome, MeetingPlan), outcome
    return outcome


def problems(inputs: Mapping[str, object]) -> list[FieldError]:
    """The problems with these inputs (a subject by default); fails the test if they make a plan."""
    outcome = plan_or_problems({ids.SUBJECT: "Consultation", **inputs},
                               PlanContext(CATALOG, PARIS, NOW, group_space=False))
    assert isinstance(outcome, list), outcome
    return outcome


# Subjects ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "subject",
    [
        "👩\u200d⚕️ Visit",  # woman health worker: ZWJ and VARIATION SELECTOR-16
        "👨\u200d👩\u200d👧 family meeting",
        "🏳️\u200d🌈 group",
        "❤️\u200d🔥 check-in",
        f"{SCOTLAND} rugby clinic",  # a subdivision flag: tag characters ended by CANCEL TAG
        "جلسه " "می" "\u200c" "خواهم",  # Persian needs the ZERO WIDTH NON-JOINER
        "क्\u200dष परामर्श",  # Devanagari half form with ZWJ
        "ന്\u200d",  # Malayalam chillu in the older ZWJ encoding, at the end
        "\u200fמרפאה 3",  # RIGHT-TO-LEFT MARK in front of Hebrew with a digit
        "\u061c" "٣ مريض",  # ARABIC LETTER MARK
        "🫨 shaky start",  # an emoji newer than this Python's Unicode data
        "#️⃣ 1",
    ],
    ids=["health worker", "family", "rainbow flag", "heart on fire", "Scotland", "Persian",
         "Hindi", "Malayalam", "Hebrew with RLM", "Arabic with ALM", "new emoji", "keycap"],
)
def test_subjects_people_type_are_accepted_as_typed(subject: str) -> None:
    """Joiners, selectors, flag tags and direction marks where people's keyboards put them."""
    assert plan({ids.SUBJECT: subject}).subject == subject


@pytest.mark.parametrize(
    ("subject", "named"),
    [
        ("Patient \u202efollow-up", "RIGHT-TO-LEFT OVERRIDE (U+202E) after 'Patient '"),
        ("\u202aLab", "LEFT-TO-RIGHT EMBEDDING (U+202A) at the start"),
        ("Lab \u2067results\u2069", "RIGHT-TO-LEFT ISOLATE (U+2067) after 'Lab '"),
        ("ad\u200bmin", "ZERO WIDTH SPACE (U+200B) after 'ad'"),
        ("ad\u2060min", "WORD JOINER (U+2060) after 'ad'"),
        ("Follow\u00adup", "SOFT HYPHEN (U+00AD) after 'Follow'"),
        ("Follow\ufeffup", "ZERO WIDTH NO-BREAK SPACE (U+FEFF) after 'Follow'"),
        ("Apple \uf8ff", "U+F8FF after 'Apple '"),
        ("Lab \ud800", "U+D800 after 'Lab '"),
        ("Lab \u0378", "U+0378 after 'Lab '"),
        ("Lab\x07\x00\x1b", "U+0007, U+0000 and 1 more after 'Lab'"),
        ("\u200dLab", "ZERO WIDTH JOINER (U+200D) at the start"),
        ("Lab \u200cresults", "ZERO WIDTH NON-JOINER (U+200C) after 'Lab '"),
        ("😀\ufe0f\ufe00\ufe01", "VARIATION SELECTOR-1 (U+FE00), VARIATION SELECTOR-2 (U+FE01) "
                                 "after '😀\ufe0f'"),
        ("🏴\U000e0041\U000e007f", "TAG LATIN CAPITAL LETTER A (U+E0041), CANCEL TAG (U+E007F) "
                                  "after '🏴'"),
        ("A long subject for the \u202eward", "after '…subject for the '"),
    ],
    ids=["override", "embedding", "isolate", "zero width space", "word joiner", "soft hyphen",
         "inner byte-order mark", "private use", "surrogate", "unassigned", "controls",
         "joiner at the start", "joiner after a space", "run of selectors", "tags without a flag",
         "long text before"],
)
def test_characters_that_disguise_text_are_named_with_where_they_are(
    subject: str, named: str
) -> None:
    """The person learns which character (by Unicode name) and where, to find and remove it."""
    [error] = problems({ids.SUBJECT: subject})
    assert error.field == "Subject"
    assert error.message.startswith("Remove ") and named in error.message, error.message


def test_several_places_are_named_together_up_to_three() -> None:
    [error] = problems({ids.SUBJECT: "a\u200bb\u200bc\u202ed\u00ade\u2060f"})
    assert error.message == (
        "Remove ZERO WIDTH SPACE (U+200B) after 'a'; ZERO WIDTH SPACE (U+200B) after 'ab'; "
        "RIGHT-TO-LEFT OVERRIDE (U+202E) after 'abc'; and more in 2 other places: such "
        "characters can hide or reorder text.")


def test_a_byte_order_mark_in_front_of_pasted_text_is_dropped() -> None:
    assert plan({ids.SUBJECT: "\ufeffWard round"}).subject == "Ward round"


def test_line_breaks_of_any_kind_become_one_space() -> None:
    assert plan({ids.SUBJECT: "Ward\u2028round\nnine"}).subject == "Ward round nine"


def test_the_subject_and_the_broker_sub_follow_one_rule() -> None:
    """The form's subject and a request's ``sub`` are refused with the same sentence."""
    text = "Lab \u202eresults"
    [subject_error] = problems({ids.SUBJECT: text})
    [sub_error] = MeetingRequest(sub=text).problems(NOW.timestamp())
    assert subject_error.message == sub_error.message
    assert MeetingRequest(sub="👩\u200d⚕️-Visit").problems(NOW.timestamp()) == []


# Counts -------------------------------------------------------------------------------------


@pytest.mark.parametrize("typed", ["1_0", "1e1", "1.0", "+3", "-0", "0x1", "1 0", "3.", "1\u0662",
                                   "²", "Ⅲ", "10" * 2500])
def test_counts_are_digits_only(typed: str) -> None:
    """No sign, point, exponent, separator, superscript or mix of scripts: what int/float allow."""
    [error] = problems({ids.GUESTS: typed})
    assert (error.field, error.message) == ("Guests", "Must be a whole number from 0 to 25.")


@pytest.mark.parametrize(
    ("typed", "count"),
    [("3", 3), (" 12 ", 12), ("007", 7), ("0" * 5000 + "2", 2), ("٣", 3), ("۱۲", 12),
     ("१२", 12), ("\uff11\uff12", 12)],
    ids=["ascii", "spaces around", "leading zeros", "many zeros", "Arabic-Indic",
         "Persian", "Devanagari", "full-width"],
)
def test_counts_in_the_digits_people_type(typed: str, count: int) -> None:
    """Digits of one script, as Arabic, Persian, Hindi and Japanese keyboards type them."""
    assert plan({ids.GUESTS: typed}).guests == count


# Forged values: anything but a string ------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "sent"),
    [
        (ids.HOSTS, 3, "a number"),
        (ids.GUESTS, 2.0, "a number"),
        (ids.GUESTS, None, "null"),
        (ids.SHORT_LINKS, True, "true"),
        (ids.HOST_LOGIN, False, "false"),
        (ids.SUBJECT, ["Ward round"], "a list"),
        (ids.EXTRA_DEVICES, {"uri": "lab@clinic.example.com"}, "an object"),
        (ids.DEVICES, ["exam-room-1@clinic.example.com"], "a list"),
        (ids.VERTICAL, 1, "a number"),
        (ids.VALID_FOR, 7200, "a number"),
        (ids.START_DATE, ["2026-12-01"], "a list"),
        (ids.START_TIME, 930, "a number"),
        (ids.DURATION, 1800, "a number"),
    ],
)
def test_a_value_that_is_not_text_is_refused_by_name(field: str, value: object, sent: str) -> None:
    """Only a forged submit sends these; one problem naming the field, nothing read as a default."""
    assert problems({field: value}) == [
        FieldError(ids.LABELS[field], f"Must be text, but this submit sent {sent}.")]


# Daylight-saving time ----------------------------------------------------------------------


def test_a_start_the_clocks_skip_is_told_with_the_time_used() -> None:
    """Paris skips 02:00-03:00 on 29 March 2026: 02:30 starts at 03:30, and the person is told."""
    spring = plan({ids.START_DATE: "2026-03-29", ids.START_TIME: "02:30"})
    assert spring.start is not None
    assert spring.start.timestamp() == datetime(2026, 3, 29, 1, 30, tzinfo=UTC).timestamp()
    assert spring.notices == ("02:30 does not exist on Sun 29 Mar in Europe/Paris: the clocks "
                              "go forward then. The start is 03:30 instead.",)


def test_a_start_that_happens_twice_is_told_which_one() -> None:
    """Paris shows 02:00-03:00 twice on 25 October 2026: the first (UTC+02:00) is used."""
    autumn = plan({ids.START_DATE: "2026-10-25", ids.START_TIME: "02:30"})
    assert autumn.start is not None
    assert autumn.start.timestamp() == datetime(2026, 10, 25, 0, 30, tzinfo=UTC).timestamp()
    assert autumn.notices == ("02:30 happens twice on Sun 25 Oct in Europe/Paris: the clocks go "
                              "back then. The start is the first 02:30, UTC+02:00.",)


def test_an_ordinary_start_has_no_notice() -> None:
    assert plan({ids.START_DATE: "2026-03-29", ids.START_TIME: "03:30"}).notices == ()
    assert plan({ids.START_DATE: "2026-03-29", ids.START_TIME: "02:30"},
                tz=ZoneInfo("UTC")).notices == ()


def test_already_over_counts_real_hours_across_a_clock_change() -> None:
    """01:30 Paris for 2 hours on 29 March runs to 02:30 UTC (04:30 local), not 03:30 local."""
    now = datetime(2026, 3, 29, 2, 0, tzinfo=UTC)
    inputs = {ids.START_DATE: "2026-03-29", ids.START_TIME: "01:30", ids.VALID_FOR: "2h"}
    started = plan(inputs, now=now)
    assert started.request("k", now.timestamp()).exp == datetime(2026, 3, 29, 2, 30,
                                                                  tzinfo=UTC).timestamp()


@pytest.mark.parametrize("day", ["0001-01-01", "1970-01-01", "2026-01-01", "9999-12-31"])
def test_a_start_at_the_edges_of_the_calendar_is_a_named_problem(day: str) -> None:
    """Found by the fuzzer: the first of January of year 1 in Paris is before any UTC date."""
    found = problems({ids.SUBJECT: "Follow-up", ids.START_DATE: day, ids.START_TIME: "00:30"})
    assert [error.field for error in found] == [ids.LABELS[ids.START_DATE]]


# Guests' contacts --------------------------------------------------------------------------

def guests_plan(inputs: Mapping[str, object], *,
                channels: Sequence[GuestChannel] = tuple(ready_channels()),
                group: bool = False) -> MeetingPlan | list[FieldError]:
    return plan_or_problems({ids.SUBJECT: "Consultation", **inputs},
                            PlanContext(CATALOG, PARIS, NOW, group_space=group,
                                        channels=channels, phone_region="FR"))


def test_more_contacts_than_guests_add_guests_and_say_so() -> None:
    outcome = guests_plan({ids.GUESTS: "1", ids.GUEST_CONTACTS: "zoe@example.org, 06 12 34 56 78",
                           ids.GUEST_NOTE: "Bring your card.\nThanks"})
    assert isinstance(outcome, MeetingPlan)
    assert outcome.guests == 2
    assert [c.address for c in outcome.contacts] == ["zoe@example.org", "+33612345678"]
    assert outcome.notices == ("2 guests: one for each contact.",)
    assert outcome.guest_note == "Bring your card.\nThanks"
    fewer = guests_plan({ids.GUESTS: "3", ids.GUEST_CONTACTS: "zoe@example.org"})
    assert isinstance(fewer, MeetingPlan) and fewer.guests == 3 and fewer.notices == ()


def test_contacts_that_would_pass_the_link_limit_are_refused() -> None:
    contacts = ", ".join(f"guest{n}@example.org" for n in range(5))
    assert guests_plan({ids.HOSTS: "21", ids.GUESTS: "1", ids.GUEST_CONTACTS: contacts}) == [
        FieldError("Guests", "Hosts and guests together can be at most 25.")]
    many = ", ".join(f"guest{n}@example.org" for n in range(11))
    assert guests_plan({ids.GUEST_CONTACTS: many}) == [
        FieldError("Send guest links to", "At most 10 contacts per meeting.")]


def test_a_channel_the_bot_has_not_is_refused_by_name() -> None:
    only_email = channels_of(FakeMail(), None)
    assert guests_plan({ids.GUEST_CONTACTS: "+33 6 12 34 56 78"}, channels=only_email) == [
        FieldError("Send guest links to",
                   "Text messages to guests are not set up for this bot; ask its administrator.")]


def test_a_bad_contact_is_named_whole_in_private_and_masked_in_a_group_space() -> None:
    assert guests_plan({ids.GUEST_CONTACTS: "zoe@exampleorg"}) == [
        FieldError("Send guest links to",
                   "'zoe@exampleorg' is not an email address like name@example.org.")]
    assert guests_plan({ids.GUEST_CONTACTS: "zoe@exampleorg"}, group=True) == [
        FieldError("Send guest links to",
                   "'z•••' is not an email address like name@example.org.")]


def test_a_note_that_hides_text_is_refused() -> None:
    [problem] = guests_plan({ids.GUEST_NOTE: "Hello\u202eevil"})
    assert isinstance(problem, FieldError) and problem.field == "Note for the guests"


# The appointment and its links --------------------------------------------------------------

MINUTE = 60
TOMORROW_9 = datetime(2026, 3, 2, 9, 0, tzinfo=PARIS).timestamp()  # 08:00 UTC


def quick(**options: str) -> MeetingPlan | list[FieldError]:
    """What ``meet Consultation key=value ...`` makes: a plan, or the problems."""
    try:
        inputs = inputs_from_options("Consultation", options, CATALOG)
    except InvalidRequest as error:
        return error.errors
    return plan_or_problems(inputs, PlanContext(CATALOG, PARIS, NOW, group_space=False))


def test_a_meeting_lasts_the_default_duration_from_now_unless_told() -> None:
    """No start, no duration: 30 minutes from now, and the links work at once (no ``nbf``)."""
    made = plan({})
    assert made.duration == parse_duration(DEFAULT_DURATION) == timedelta(minutes=30)
    now = NOW.timestamp()
    assert made.appointment(now) == (now, now + 30 * MINUTE)
    request = made.request("k", now)
    assert (request.nbf, request.exp) == (None, now + 2 * 3600)  # "Links valid for" 2h covers it
    assert made.notices == ()


@pytest.mark.parametrize(("typed", "minutes"),
                         [("15m", 15), ("45 min", 45), ("1h", 60), ("90m", 90), ("12h", 720),
                          ("5m", 5)])
def test_meet_for_sets_how_long_the_meeting_lasts(typed: str, minutes: int) -> None:
    made = quick(date="2026-03-02", time="09:00", valid="7d", **{"for": typed})
    assert isinstance(made, MeetingPlan), made
    assert made.appointment(NOW.timestamp()) == (TOMORROW_9, TOMORROW_9 + minutes * MINUTE)


@pytest.mark.parametrize("typed", ["4m", "0m", "13h", "1d", "forever", "30", "-30m"])
def test_meet_for_out_of_range_or_unreadable_is_refused_by_name(typed: str) -> None:
    assert quick(**{"for": typed}) == [
        FieldError("Duration", "Choose how long the meeting lasts, from 5 minutes to 12 hours.")]


def test_an_unknown_option_names_for_among_the_options() -> None:
    refused = quick(length="30m")
    assert isinstance(refused, list) and len(refused) == 1
    assert refused[0].field == "Option length" and "for=" in refused[0].message


@pytest.mark.parametrize("choice", list(ids.DURATION_CHOICES))
def test_each_duration_the_form_offers_is_the_meeting_s_length(choice: str) -> None:
    made = plan({ids.DURATION: choice})
    assert made.duration == parse_duration(choice)
    assert DEFAULT_DURATION in ids.DURATION_CHOICES


def test_links_open_early_and_outlast_a_later_meeting_by_the_margin() -> None:
    """09:00 for 1 hour, links asked for 15 minutes: they open 08:50 and work until 10:30, and
    the person is told why they last longer than asked."""
    made = plan({ids.START_DATE: "2026-03-02", ids.START_TIME: "09:00", ids.DURATION: "1h",
                 ids.VALID_FOR: "15m"})
    request = made.request("k", NOW.timestamp())
    assert made.appointment(NOW.timestamp()) == (TOMORROW_9, TOMORROW_9 + 60 * MINUTE)
    assert (request.nbf, request.exp) == (TOMORROW_9 - 10 * MINUTE, TOMORROW_9 + 90 * MINUTE)
    assert made.notices == ("The links stay valid until 30 minutes after the meeting ends, not "
                            "just 15 minutes from its start.",)


def test_a_validity_longer_than_the_meeting_and_its_margin_is_kept_as_asked() -> None:
    made = plan({ids.START_DATE: "2026-03-02", ids.START_TIME: "09:00", ids.DURATION: "90m",
                 ids.VALID_FOR: "4h"})
    request = made.request("k", NOW.timestamp())
    assert (request.nbf, request.exp) == (TOMORROW_9 - 10 * MINUTE, TOMORROW_9 + 4 * 3600)
    assert made.notices == ()


def test_a_meeting_that_starts_now_gets_links_that_outlast_it_too() -> None:
    made = plan({ids.DURATION: "2h", ids.VALID_FOR: "1h"})
    now = NOW.timestamp()
    request = made.request("k", now)
    assert (request.nbf, request.exp) == (None, now + 150 * MINUTE)
    assert made.notices == ("The links stay valid until 30 minutes after the meeting ends, not "
                            "just 1 hour from its start.",)


def test_links_valid_seven_days_make_a_thirty_minute_meeting_not_a_week_long_one() -> None:
    """The defect of issue 22: ``valid=7d`` made a seven-day calendar event."""
    made = quick(date="2026-03-02", time="09:00", valid="7d")
    assert isinstance(made, MeetingPlan), made
    request = made.request("k", NOW.timestamp())
    assert made.appointment(NOW.timestamp()) == (TOMORROW_9, TOMORROW_9 + 30 * MINUTE)
    assert (request.nbf, request.exp) == (TOMORROW_9 - 10 * MINUTE, TOMORROW_9 + 7 * 86400)


def test_a_start_in_the_past_whose_links_would_be_over_is_refused_as_before() -> None:
    """At 13:00 Paris, 11:00 for 30 minutes with links for 15: over at 12:00 (its end and the
    margin), refused; 12:40 is still on: accepted, its links running from 12:30."""
    over = problems({ids.START_DATE: "2026-03-01", ids.START_TIME: "11:00",
                     ids.VALID_FOR: "15m"})
    assert over == [FieldError("Start date", ALREADY_OVER)]
    started = plan({ids.START_DATE: "2026-03-01", ids.START_TIME: "12:40", ids.VALID_FOR: "15m"})
    begin = datetime(2026, 3, 1, 12, 40, tzinfo=PARIS).timestamp()
    request = started.request("k", NOW.timestamp())
    assert (request.nbf, request.exp) == (begin - 10 * MINUTE, begin + 60 * MINUTE)
    assert request.problems(NOW.timestamp()) == []


def test_a_meeting_across_a_clock_change_lasts_real_hours() -> None:
    """01:30 Paris on 29 March for 2 hours ends 02:30 UTC, 04:30 local (the clocks skip 02:00)."""
    made = plan({ids.START_DATE: "2026-03-29", ids.START_TIME: "01:30", ids.DURATION: "2h"})
    start, end = made.appointment(NOW.timestamp())
    assert (start, end) == (datetime(2026, 3, 29, 0, 30, tzinfo=UTC).timestamp(),
                            datetime(2026, 3, 29, 2, 30, tzinfo=UTC).timestamp())
    assert datetime.fromtimestamp(end, PARIS).hour == 4
