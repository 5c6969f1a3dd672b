"""Guests written to in their own language: the catalogs complete, in step with the code and
compiled, found where the package is installed; dates as CLDR writes them; plurals; every
language's text message within two GSM-7 segments; the language chosen per meeting, kept with
it, and used for its update and its cancellation."""

from __future__ import annotations

import email
import email.policy
import fnmatch
import gettext
import re
import shutil
import subprocess
import tomllib
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
import pytest
from babel import Locale
from babel.messages.catalog import Catalog
from babel.messages.frontend import CommandLineInterface
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from bot.conversation.guest_messages import (
    Invitation,
    MessageKind,
    calendar_invite,
    gsm7_date,
    guest_email,
    guest_sms,
    translations,
)
from bot.conversation.plan import PlanContext, inputs_from_options, plan_from_inputs
from bot.devtools.sandbox.sms import GSM7, GSM7_EXTENDED, segments
from bot.errors import InvalidRequest
from bot.jobs.storage import Store
from bot.meetings.record import from_json, public_json
from bot.settings import Settings, SettingsError
from bot.upstream.instant_connect import Link
from cards import inputs as ids
from cards.form import ContactWay, meeting_form
from cards.inputs import DEFAULT_GUEST_LANGUAGE, GUEST_LANGUAGES
from tests.support.conversation import ALICE, DM, NOW, Bot

ROOT = Path(__file__).resolve().parent.parent
LOCALE = ROOT / "bot" / "locale"
TRANSLATED = [language for language in GUEST_LANGUAGES if language != DEFAULT_GUEST_LANGUAGE]
PLACEHOLDER = re.compile(r"\{(\w*)\}")
SHORT = "https://instant.webex.com/visit/AbC123x"
LONG = "https://instant.webex.com/hc/v1/talk?int=jose&v=1&data=" + "e" * 1400
START = int(datetime(2027, 1, 15, 8, 0, tzinfo=UTC).timestamp())  # 09:00 in Paris, a Friday
MAIL_FROM = "instant-connect@clinic.example.com"


def po(language: str) -> Path:
    return LOCALE / language / "LC_MESSAGES" / "guests.po"


def catalog(language: str) -> Catalog:
    with po(language).open("rb") as source:
        return read_po(source, locale=language)


def messages(found: Catalog) -> dict[str, Any]:
    """Each message's key (its msgid) and what it holds: its msgid and plural, or its
    translation."""
    return {(m.id if isinstance(m.id, str) else m.id[0]): m for m in found if m.id}


def strings(message: Any) -> tuple[str, ...]:
    """A message's translation: its one string, or each plural form (a .mo reads a list)."""
    return (message.string,) if isinstance(message.string, str) else tuple(message.string)


def placeholders(*texts: str) -> set[str]:
    return {name for text in texts for name in PLACEHOLDER.findall(text)}


def invitation(language: str = "en", kind: MessageKind = MessageKind.INVITATION, *,
               start: int = START, minutes: int = 120, subject: str = "Follow-up",
               org_name: str = "Clinique du Parc", organizer_name: str = "Alice Martin",
               opens: int | None = None) -> Invitation:
    return Invitation(
        subject=subject, link=Link("guest", 1, LONG, SHORT), start=start,
        end=start + minutes * 60, tz=ZoneInfo("Europe/Paris"), note="", opens=opens,
        organizer_name=organizer_name, organizer_email="alice@clinic.example.com",
        meeting_id="m-1", sequence=0 if kind is MessageKind.INVITATION else 1, kind=kind,
        org_name=org_name, language=language)


def received(message: EmailMessage) -> EmailMessage:
    parsed = email.message_from_bytes(message.as_bytes(), policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


# The catalogs ---------------------------------------------------------------------------------


def test_the_catalogs_hold_what_pybabel_extract_finds_in_the_code(tmp_path: Path) -> None:
    """``pybabel extract`` as its command line runs it, with the mapping in pyproject.toml:
    a message added, changed or removed in the code and not in a catalog fails here."""
    template = tmp_path / "guests.pot"
    CommandLineInterface().run(["pybabel", "-q", "extract", "-F", str(ROOT / "pyproject.toml"),
                                "-o", str(template), str(ROOT / "bot")])
    with template.open("rb") as source:
        found = messages(read_po(source))
    assert len(found) > 20 and "Your host" in found  # the mapping reaches guest_messages.py
    for language in TRANSLATED:
        kept = messages(catalog(language))
        assert set(kept) == set(found), (language, set(found) ^ set(kept))
        for key, message in found.items():
            assert kept[key].id == message.id, (language, key)  # a plural kept as a plural


COUNTS = (0, 1, 2, 5, 11, 21, 100, 1_000_000)


def plural_groups(expression: str) -> set[frozenset[int]]:
    """Which counts a catalog's Plural-Forms puts in the same form."""
    form = gettext.c2py(expression)
    return {frozenset(n for n in COUNTS if form(n) == form(count)) for count in COUNTS}


def cldr_plural_groups(language: str) -> set[frozenset[int]]:
    """Which counts CLDR says share a plural category in the language ("1 invité",
    "2 invités"; French puts 0 with 1, and its millions apart: "1 000 000 d'invités")."""
    category = Locale.parse(language).plural_form
    return {frozenset(n for n in COUNTS if category(n) == category(count)) for count in COUNTS}


@pytest.mark.parametrize("language", TRANSLATED)
def test_every_catalog_translates_every_message_with_its_placeholders(language: str) -> None:
    found = catalog(language)
    assert found.locale is not None and str(found.locale) == language
    assert plural_groups(found.plural_expr) == cldr_plural_groups(language)
    for key, message in messages(found).items():
        ids_ = message.id if isinstance(message.id, tuple) else (message.id,)
        assert not message.fuzzy, key
        assert len(strings(message)) == (found.num_plurals if len(ids_) == 2 else 1), key
        for string in strings(message):
            assert string.strip(), (language, key)  # translated
            assert placeholders(string) == placeholders(*ids_), (language, key, string)


@pytest.mark.parametrize("language", TRANSLATED)
def test_the_compiled_catalogs_are_their_sources(language: str) -> None:
    """The .mo the bot reads says what the .po says: no catalog edited and left uncompiled."""
    with po(language).with_suffix(".mo").open("rb") as compiled:
        built = read_mo(compiled)
    assert built.plural_forms == catalog(language).plural_forms
    assert {key: strings(m) for key, m in messages(built).items()} == {
        key: strings(m) for key, m in messages(catalog(language)).items()}


def test_a_fresh_install_finds_every_catalog() -> None:
    """The bot reads the compiled catalogs through importlib.resources, from wherever the
    package is installed: the wheel's package data takes them, and the repository holds them
    (a clone's ``pip install -e .`` reads them from its tree)."""
    data = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    shipped = data["tool"]["setuptools"]["package-data"]["bot"]
    for language in TRANSLATED:
        loaded = translations(language)
        assert isinstance(loaded, gettext.GNUTranslations)
        assert loaded.gettext("Your host") != "Your host"
        inside = po(language).with_suffix(".mo").relative_to(ROOT / "bot").as_posix()
        assert any(fnmatch.fnmatch(inside, pattern) for pattern in shipped), inside
    git = shutil.which("git")
    if git is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: whether the catalogs are committed cannot be asked")
    listed = subprocess.run([git, "ls-files", "bot/locale"], cwd=ROOT, capture_output=True,
                            text=True, check=True).stdout.split()
    assert {f"bot/locale/{language}/LC_MESSAGES/guests.{kind}" for language in TRANSLATED
            for kind in ("po", "mo")} <= set(listed)


def test_each_language_has_a_catalog_and_no_catalog_lacks_a_language() -> None:
    assert sorted(path.name for path in LOCALE.iterdir() if path.is_dir()) == sorted(TRANSLATED)
    assert {"en", "es", "fr", "de", "pt", "it", "nl"} <= set(GUEST_LANGUAGES)
    for language in GUEST_LANGUAGES:
        Locale.parse(language)  # CLDR knows it


# What guests read -------------------------------------------------------------------------------


THE_15TH = {  # Fri 15 Jan 2027, 09:00 to 11:00 in Paris, as each language writes it (CLDR)
    "en": "Fri, Jan 15, 2027, 9:00\u2009\u2013\u200911:00\u202fAM",
    "es": "vie, 15 ene 2027, 9:00\u201311:00",
    "fr": "ven. 15 janv. 2027, 09:00\u2009\u2013\u200911:00",
    "de": "Fr., 15. Jan. 2027, 09:00\u201311:00 Uhr",
    "pt": "sex., 15 de jan. de 2027 09:00\u2009\u2013\u200911:00",
    "it": "ven 15 gen 2027, 09:00\u201311:00",
    "nl": "vr 15 jan 2027, 09:00\u201311:00",
}


@pytest.mark.parametrize("language", list(GUEST_LANGUAGES))
def test_dates_are_written_as_each_language_writes_them(language: str) -> None:
    assert invitation(language).window == f"{THE_15TH[language]} (Europe/Paris, UTC+01:00)"


def test_a_window_across_midnight_or_a_clock_change_in_another_language() -> None:
    late = int(datetime(2027, 8, 14, 21, 0, tzinfo=UTC).timestamp())
    assert invitation("es", start=late, minutes=90).window == (
        "s\u00e1b, 14 ago 2027, 23:00\u2009\u2013\u2009dom, 15 ago 2027, 0:30 "
        "(Europe/Paris, UTC+02:00)")
    spring = int(datetime(2026, 3, 29, 0, 30, tzinfo=UTC).timestamp())
    assert invitation("de", start=spring).window == (
        "So., 29. M\u00e4rz 2026, 01:30 UTC+01:00\u2009\u2013\u200904:30 UTC+02:00 "
        "(Europe/Paris)")


def test_a_spanish_guest_reads_spanish_everywhere() -> None:
    spanish = invitation("es", opens=START - 600)
    mail = received(guest_email(spanish, "zoe@example.org", MAIL_FROM))
    assert mail["Content-Language"] == "es"
    assert mail["Subject"] == "Su videollamada: Follow-up"
    text = mail.get_body(("plain",))
    page = mail.get_body(("html",))
    assert text is not None and page is not None
    body = text.get_content()
    assert body.startswith("Alice Martin, Clinique du Parc, le invita a una videollamada: "
                           "Follow-up\n")
    assert f"Fecha: {THE_15TH['es']} (Europe/Paris, UTC+01:00)\n" in body
    assert f"Enlace: {SHORT}\n(o {LONG})\n" in body
    assert "Puede conectarse desde 10 minutos antes del inicio." in body
    assert body.endswith("Se adjunta la invitación para su calendario.\n")
    html = page.get_content()
    assert '<html lang="es">' in html and "Unirse a la videollamada" in html
    assert "Escanee este código" in html and 'alt="Código QR del enlace' in html
    [event] = icalendar.Calendar.from_ical(
        calendar_invite(spanish, "zoe@example.org", MAIL_FROM)).walk("VEVENT")
    assert str(event["SUMMARY"]) == "Videollamada: Follow-up"
    assert event["SUMMARY"].params["LANGUAGE"] == "es"
    assert "le invita a una videollamada" in str(event["DESCRIPTION"])
    assert event["DESCRIPTION"].params["LANGUAGE"] == "es"
    assert guest_sms(spanish) == (
        "Alice Martin, Clinique du Parc, le invita a una videollamada (Follow-up) el "
        f"vie, 15 ene 2027, 9:00-11:00 (Europe/Paris, UTC+01:00). Enlace: {SHORT}")
    assert guest_sms(invitation("es", MessageKind.CANCELLATION)) == (
        "Alice Martin, Clinique du Parc, ha cancelado la videollamada (Follow-up) del "
        "vie, 15 ene 2027, 9:00-11:00 (Europe/Paris, UTC+01:00).")


@pytest.mark.parametrize("kind", list(MessageKind))
def test_every_message_differs_from_english_in_every_language(kind: MessageKind) -> None:
    """No message of any kind goes out in English to a guest who reads another language."""
    english = invitation("en", kind, opens=START - 600)
    english_lines = _english_lines(english)
    for language in TRANSLATED:
        other = invitation(language, kind, opens=START - 600)
        mail = received(guest_email(other, "zoe@example.org", MAIL_FROM))
        assert mail["Content-Language"] == language
        assert mail["Subject"] != received(guest_email(english, "z@x.org", MAIL_FROM))["Subject"]
        text = mail.get_body(("plain",))
        assert text is not None
        for line in text.get_content().splitlines():
            assert not line or line not in english_lines, (language, line)
        assert guest_sms(other) != guest_sms(english)


def _english_lines(english: Invitation) -> set[str]:
    mail = received(guest_email(english, "zoe@example.org", MAIL_FROM))
    text = mail.get_body(("plain",))
    assert text is not None
    return {line for line in text.get_content().splitlines() if "http" not in line}


MINUTES = {  # "1 minute", "10 minutes": each language's singular and plural
    "en": ("from 1 minute before", "from 10 minutes before"),
    "es": ("desde 1 minuto antes", "desde 10 minutos antes"),
    "fr": ("dès 1 minute avant", "dès 10 minutes avant"),
    "de": ("ab 1 Minute vor", "ab 10 Minuten vor"),
    "pt": ("de 1 minuto antes", "de 10 minutos antes"),
    "it": ("da 1 minuto prima", "da 10 minuti prima"),
    "nl": ("vanaf 1 minuut voor", "vanaf 10 minuten voor"),
}


@pytest.mark.parametrize("language", list(GUEST_LANGUAGES))
def test_how_early_a_guest_may_join_takes_the_plural_its_count_needs(language: str) -> None:
    one, ten = MINUTES[language]
    early = invitation(language, opens=START - 60).early
    assert early is not None and one in early
    early = invitation(language, opens=START - 600).early
    assert early is not None and ten in early
    assert invitation(language).early is None  # a meeting starting now: its link works at once
    assert invitation(language, MessageKind.CANCELLATION, opens=START - 600).early is None


# Text messages --------------------------------------------------------------------------------


def every_month_and_weekday() -> list[int]:
    """A start on each day of a year, nine days apart: every month and every weekday."""
    first = datetime(2027, 1, 4, 15, 30, tzinfo=UTC)
    return [int((first + timedelta(days=9 * step)).timestamp()) for step in range(41)]


@pytest.mark.parametrize("kind", list(MessageKind))
@pytest.mark.parametrize("language", list(GUEST_LANGUAGES))
def test_every_languages_text_message_is_gsm7_within_two_segments(
        language: str, kind: MessageKind) -> None:
    """A typical meeting with a long subject and both names, on any day of the year: a single
    character outside GSM-7 (an "á" of CLDR's "sáb", a thin space) would make it UCS-2, and
    three or four segments."""
    for start in every_month_and_weekday():
        text = guest_sms(invitation(
            language, kind, start=start, minutes=45, subject="Physiotherapy follow-up",
            org_name="Clinique du Parc Monceau", organizer_name="Dr Claire Martin-Dubois"))
        assert set(text) <= GSM7 | GSM7_EXTENDED, (language, set(text) - GSM7 - GSM7_EXTENDED)
        assert segments(text) <= 2, (language, len(text), text)
        assert (SHORT in text) is (kind is not MessageKind.CANCELLATION)


def test_a_text_messages_date_loses_only_the_accents_gsm7_lacks() -> None:
    assert gsm7_date("s\u00e1b., 14 de ago. de 2027") == "sab., 14 de ago. de 2027"
    assert gsm7_date("sam. 14 ao\u00fbt 2027, 09:00\u2009\u2013\u200911:00") == (
        "sam. 14 aout 2027, 09:00 - 11:00")
    assert gsm7_date("So., 29. M\u00e4rz, d\u00e9c., 9:00\u202fAM") == (
        "So., 29. M\u00e4rz, d\u00e9c., 9:00 AM")  # GSM-7 has ä and é


# The language of a meeting --------------------------------------------------------------------


def plan_context(**changes: Any) -> PlanContext:
    return PlanContext(catalog=(), tz=UTC, now=datetime.fromtimestamp(NOW, UTC),
                       group_space=False, **changes)


def test_the_quick_path_chooses_the_language_and_the_setting_is_the_default() -> None:
    chosen = plan_from_inputs(inputs_from_options("Knee", {"lang": "ES"}, ()), plan_context())
    assert chosen.language == "es"
    assert plan_from_inputs({ids.SUBJECT: "Knee"}, plan_context()).language == "en"
    assert plan_from_inputs({ids.SUBJECT: "Knee"},
                            plan_context(guest_language="nl")).language == "nl"
    with pytest.raises(InvalidRequest) as refused:
        plan_from_inputs(inputs_from_options("Knee", {"lang": "xx"}, ()), plan_context())
    [error] = refused.value.errors
    assert error.field == "Guests' language" and "en, es, fr, de, pt, it, nl" in error.message


def test_the_form_offers_each_language_by_its_own_name_the_default_chosen() -> None:
    form = meeting_form((), group_space=False, timezone_name="UTC",
                        channels=[ContactWay("email addresses", "zoe@example.org")],
                        guest_language="fr")
    [choice] = [item for item in form["body"] if item.get("id") == ids.GUEST_LANGUAGE]
    assert choice["value"] == "fr" and choice["label"] == "Guests' language"
    assert {c["value"]: c["title"] for c in choice["choices"]}["es"] == "Español"
    assert len(choice["choices"]) == len(GUEST_LANGUAGES)
    without_channels = meeting_form((), group_space=False, timezone_name="UTC")
    assert ids.GUEST_LANGUAGE not in str(without_channels)  # nobody to write to


def test_guest_language_is_a_setting() -> None:
    settings = Settings.from_env({"WEBEX_BOT_TOKEN": "tok", "GUEST_LANGUAGE": "de"})
    assert settings.conversation_config().guest_language == "de"
    assert Settings.from_env({"WEBEX_BOT_TOKEN": "tok"}).conversation_config().guest_language \
        == "en"
    with pytest.raises(SettingsError, match="GUEST_LANGUAGE must be one of en, es"):
        Settings.from_env({"WEBEX_BOT_TOKEN": "tok", "GUEST_LANGUAGE": "klingon"})


def test_a_meeting_keeps_its_language_and_older_records_read_as_english(store: Store) -> None:
    bot = Bot(store, guest_language="fr")
    day = (datetime.fromtimestamp(NOW, ZoneInfo("America/New_York")) + timedelta(days=1))
    bot.say(f"meet Knee date={day.date().isoformat()} time=09:00 to=zoe@example.org lang=es",
            room=DM)
    [meeting] = bot.book.listed(person_id=ALICE.id, since=0, limit=10)
    assert meeting.language == "es"
    assert from_json(public_json(meeting), None).language == "es"
    older = public_json(meeting).replace(',"language":"es"', "")
    assert "language" not in older and from_json(older, None).language == "en"


def test_a_meetings_guests_read_its_language_from_invitation_to_cancellation(
        store: Store) -> None:
    """The person's choice, not the setting; and the cancellation, pressed later, in the
    language the meeting was made in."""
    bot = Bot(store, guest_language="fr")
    day = (datetime.fromtimestamp(NOW, ZoneInfo("America/New_York")) + timedelta(days=1))
    bot.say(f"meet Knee date={day.date().isoformat()} time=09:00 "
            "to=zoe@example.org,+33612345678 lang=it", room=DM)
    [meeting] = bot.book.listed(person_id=ALICE.id, since=0, limit=10)
    [invited] = bot.mail.sent
    assert invited["Content-Language"] == "it"
    assert invited["Subject"] == "La sua videochiamata: Knee"
    [(_, text)] = bot.sms.sent
    assert text.startswith("Alice Doctor la invita a una videochiamata (Knee) il ")
    before = len(bot.webex.sent)
    bot.say("meetings", room=DM)
    card_id = str(bot.webex.sent[before]["id"])
    bot.submit(card_id, {ids.ACTION: ids.ACTION_CANCEL_MEETING, ids.MEETING: meeting.id},
               room=DM)
    cancelled = bot.mail.sent[-1]
    assert cancelled["Subject"] == "Videochiamata annullata: Knee"
    assert bot.sms.sent[-1][1].startswith("Alice Doctor ha annullato la videochiamata (Knee) ")
