"""Webhook sync against the sandbox: exactly the bot's three webhooks, and nobody else's touched."""

from __future__ import annotations

import hashlib
import hmac
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.devtools.sandbox import Sandbox
from bot.events import HANDLED
from bot.secret import Secret
from bot.upstream.webex import WebexClient, Webhook
from bot.upstream.webhook_sync import NAME_PREFIX, SyncReport, sync, webhook_name
from tests.conftest import FAST_RETRY, WEBHOOK_SECRET, RunningBot

TARGET = "https://bot.example.com/webhooks"
SECRET = Secret(WEBHOOK_SECRET)
NAMES = sorted(webhook_name(resource) for resource, _ in HANDLED)
# Nothing listens here: deliveries fail fast, but the sandbox still records what it signed.
DEAD_URL = "http://127.0.0.1:9/webhooks"


@pytest.fixture
def webex(sandbox: Sandbox) -> WebexClient:
    return WebexClient(Secret(sandbox.bot_token), sandbox.webex_base_url, retry=FAST_RETRY)


def hooks(webex: WebexClient) -> list[Webhook]:
    """Every webhook the bot's token sees, as the bot itself lists them."""
    return list(webex.webhooks())


def ours(webex: WebexClient) -> list[Webhook]:
    return sorted((h for h in hooks(webex) if h.name in NAMES), key=lambda h: h.name)


def signed_with(sandbox: Sandbox, hook_id: str, secret: str) -> bool:
    """Have the sandbox deliver an event on this webhook; True if signed with ``secret``."""
    delivery = sandbox.deliver(hook_id, {"id": "EVENT-1", "roomId": "ROOM-1"})
    expected = hmac.new(secret.encode(), delivery.body, hashlib.sha1).hexdigest()
    return delivery.signature == expected


def assert_exactly_the_three(webex: WebexClient, target: str = TARGET) -> list[Webhook]:
    """The bot's webhooks are the three wanted ones, active, aimed at ``target``, unfiltered."""
    mine = ours(webex)
    assert sorted((h.resource, h.event) for h in mine) == sorted(HANDLED)
    assert [h.name for h in mine] == NAMES
    assert {(h.status, h.target_url, h.filter) for h in mine} == {("active", target, None)}
    return mine


def own(sandbox: Sandbox, resource: str, *, target: str = TARGET, event: str = "created",
        secret: str | None = "old-secret", name: str | None = None) -> dict[str, Any]:
    """Register a webhook with the bot's token, as an earlier deploy would have."""
    return sandbox.register_webhook(target, secret, resource, event,
                                    name=name or webhook_name(resource))


def test_from_nothing_it_creates_the_three_webhooks_signed_with_the_secret(
    sandbox: Sandbox, webex: WebexClient
) -> None:
    """Messages, card submits and memberships, each delivering events signed with the secret."""
    report = sync(webex, DEAD_URL, SECRET)
    assert sorted(report.created) == NAMES
    assert (report.updated, report.deleted, report.untouched_foreign) == ((), (), 0)
    for hook in assert_exactly_the_three(webex, DEAD_URL):
        assert signed_with(sandbox, hook.id, WEBHOOK_SECRET)
        assert not signed_with(sandbox, hook.id, "another-secret")


def test_synced_webhooks_reach_the_running_bot_which_accepts_them(
    running_bot: RunningBot,
) -> None:
    """End to end: sandbox deliveries on the synced webhooks pass the bot's signature check."""
    sb = running_bot.sandbox
    webex = WebexClient(Secret(sb.bot_token), sb.webex_base_url, retry=FAST_RETRY)
    report = sync(webex, running_bot.url, SECRET)
    assert report.untouched_foreign == 3  # the fixture's own "bot ..." webhooks
    hook = next(h for h in ours(webex) if h.resource == "memberships")
    delivery = sb.deliver(hook.id, {"id": "MEMBERSHIP-SYNC", "roomId": "ROOM-1"})
    assert delivery.status == 200


def test_running_it_twice_changes_nothing(sandbox: Sandbox, webex: WebexClient) -> None:
    """Idempotent: the second run creates and deletes nothing and keeps the same ids."""
    sync(webex, TARGET, SECRET)
    first = assert_exactly_the_three(webex)
    report = sync(webex, TARGET, SECRET)
    assert (report.created, report.deleted) == ((), ())
    assert sorted(report.updated) == NAMES
    assert assert_exactly_the_three(webex) == first
    assert len(hooks(webex)) == 3


def test_a_disabled_webhook_is_re_enabled_in_place(sandbox: Sandbox, webex: WebexClient) -> None:
    """Webex disabled one after failures: sync sets it active again, same id, no new one."""
    sync(webex, TARGET, SECRET)
    victim = next(h for h in ours(webex) if h.resource == "attachmentActions")
    sandbox.disable_webhook(victim.id)
    assert next(h for h in hooks(webex) if h.id == victim.id).status == "inactive"
    report = sync(webex, TARGET, SECRET)
    assert report.created == ()
    assert victim.id in {h.id for h in assert_exactly_the_three(webex)}


def test_a_wrong_target_and_an_old_secret_are_fixed_in_place(
    sandbox: Sandbox, webex: WebexClient
) -> None:
    """A webhook from an older deploy gets the new URL and the current secret, same id."""
    old = own(sandbox, "messages", target="https://old-host.example.com/webex")
    report = sync(webex, DEAD_URL, SECRET)
    assert webhook_name("messages") in report.updated
    assert webhook_name("messages") not in report.created
    fixed = next(h for h in assert_exactly_the_three(webex, DEAD_URL) if h.resource == "messages")
    assert fixed.id == old["id"]
    assert signed_with(sandbox, fixed.id, WEBHOOK_SECRET)


def test_its_own_duplicates_are_removed_keeping_the_healthiest(
    sandbox: Sandbox, webex: WebexClient
) -> None:
    """Three copies of the messages webhook become one: the active one already on target."""
    disabled = own(sandbox, "messages")
    sandbox.disable_webhook(disabled["id"])
    elsewhere = own(sandbox, "messages", target="https://old-host.example.com/webex")
    healthy = own(sandbox, "messages")
    report = sync(webex, TARGET, SECRET)
    assert report.deleted == (webhook_name("messages"),) * 2
    kept = {h.id for h in assert_exactly_the_three(webex)}
    assert healthy["id"] in kept
    assert not {disabled["id"], elsewhere["id"]} & {h.id for h in hooks(webex)}


def test_its_own_leftovers_are_removed(sandbox: Sandbox, webex: WebexClient) -> None:
    """An old bot webhook (rooms) and one with the messages name but the wrong event go away."""
    retired = own(sandbox, "rooms")
    wrong_event = own(sandbox, "messages", event="deleted")
    report = sync(webex, TARGET, SECRET)
    assert sorted(report.deleted) == [webhook_name("messages"), webhook_name("rooms")]
    assert not {retired["id"], wrong_event["id"]} & {h.id for h in hooks(webex)}
    assert_exactly_the_three(webex)


FOREIGN_NAMES = [
    "other-app messages",
    "bot messages",
    f"{NAME_PREFIX}anist messages",
    f"{NAME_PREFIX}-staging messages",
    f"my {NAME_PREFIX} messages",
]


def test_webhooks_of_other_apps_are_never_touched(sandbox: Sandbox, webex: WebexClient) -> None:
    """Other names on the bot's token and every webhook of another owner stay as they were."""
    theirs = [sandbox.register_webhook("https://other.example.com/hook", "their-secret",
                                       "messages", "created", name=name)
              for name in FOREIGN_NAMES]
    sandbox.disable_webhook(theirs[0]["id"])
    other_owner = [sandbox.register_webhook("https://other.example.com/hook", "their-secret",
                                            resource, event, name=webhook_name(resource),
                                            owner_token="another-apps-token")
                   for resource, event in HANDLED]
    before = {h.id: h for h in hooks(webex) if h.name in FOREIGN_NAMES}
    report = sync(webex, DEAD_URL, SECRET)
    assert report.untouched_foreign == len(FOREIGN_NAMES)
    assert sorted(report.created) == NAMES and report.deleted == ()
    after = {h.id: h for h in hooks(webex) if h.name in FOREIGN_NAMES}
    assert after == before
    assert_exactly_the_three(webex, DEAD_URL)
    for hook in theirs[1:] + other_owner:
        delivery = sandbox.deliver(hook["id"], {"id": "EVENT-2"})
        assert b"https://other.example.com/hook" in delivery.body
        assert signed_with(sandbox, hook["id"], "their-secret")
    changes = [*sandbox.requests_matching("PUT", "/v1/webhooks/*"),
               *sandbox.requests_matching("DELETE", "/v1/webhooks/*")]
    assert not {r.path.rsplit("/", 1)[1] for r in changes} & set(before)


def test_it_follows_pagination_to_find_its_own_webhooks(
    sandbox: Sandbox, webex: WebexClient
) -> None:
    """With 120 other webhooks first, its own on the second page are found, not duplicated."""
    for number in range(120):
        sandbox.register_webhook(f"https://other.example.com/{number}", None, "messages",
                                 "created", name=f"other-app {number}")
    late = own(sandbox, "memberships")
    sandbox.disable_webhook(late["id"])
    report = sync(webex, TARGET, SECRET)
    listed = sandbox.requests_matching("GET", "/v1/webhooks")
    assert len(listed) >= 2 and any("cursor" in r.query for r in listed)
    assert report.untouched_foreign == 120
    assert webhook_name("memberships") not in report.created
    assert late["id"] in {h.id for h in assert_exactly_the_three(webex)}
    assert len(hooks(webex)) == 123


def test_the_report_reads_well() -> None:
    """One line per change and a count of the webhooks left alone."""
    report = SyncReport(created=("a",), updated=("b",), deleted=("c",), untouched_foreign=2)
    assert report.lines() == ["created  a", "updated  b", "deleted  c (duplicate)",
                              "left alone 2 webhook(s) that are not the bot's"]


# The command line, as an operator runs it after a deploy.


@pytest.fixture
def cli_env(sandbox: Sandbox) -> Iterator[dict[str, str]]:
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "SYSTEMROOT")}
    yield {**keep, "WEBEX_BOT_TOKEN": sandbox.bot_token,
           "WEBEX_API_URL": sandbox.webex_base_url, "WEBHOOK_SECRET": WEBHOOK_SECRET}


def run_cli(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bot", "webhooks", *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=60)


def test_cli_sync_creates_the_webhooks_and_prints_the_report(
    sandbox: Sandbox, webex: WebexClient, cli_env: dict[str, str], tmp_path: Path
) -> None:
    """`webhooks sync --url` exits 0, prints what it did, and never prints the token."""
    done = run_cli(cli_env, tmp_path, "sync", "--url", "http://x/webhooks")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert sorted(lines[:3]) == [f"created  {name}" for name in NAMES]
    assert lines[3] == "left alone 0 webhook(s) that are not the bot's"
    assert sandbox.bot_token not in done.stdout + done.stderr
    assert WEBHOOK_SECRET not in done.stdout + done.stderr
    mine = assert_exactly_the_three(webex, "http://x/webhooks")
    assert signed_with(sandbox, mine[0].id, WEBHOOK_SECRET)


def test_cli_sync_uses_public_url_and_webhook_path(
    webex: WebexClient, cli_env: dict[str, str], tmp_path: Path
) -> None:
    """Without --url the target is PUBLIC_URL + WEBHOOK_PATH."""
    env = {**cli_env, "PUBLIC_URL": "https://bot.example.com/", "WEBHOOK_PATH": "/webex/events"}
    done = run_cli(env, tmp_path, "sync")
    assert done.returncode == 0, done.stderr
    assert_exactly_the_three(webex, "https://bot.example.com/webex/events")


@pytest.mark.parametrize(
    ("drop", "args", "wanted"),
    [(None, ("sync",), "--url"),
     ("WEBHOOK_SECRET", ("sync", "--url", "http://x/webhooks"), "WEBHOOK_SECRET"),
     ("WEBEX_BOT_TOKEN", ("list",), "WEBEX_BOT_TOKEN")],
    ids=["no url", "no secret", "no token"],
)
def test_cli_refuses_with_one_line_and_exit_2(
    sandbox: Sandbox, cli_env: dict[str, str], tmp_path: Path,
    drop: str | None, args: tuple[str, ...], wanted: str,
) -> None:
    """A missing URL, secret or token: exit 2, one line on stderr saying what to set."""
    env = {k: v for k, v in cli_env.items() if k != drop}
    done = run_cli(env, tmp_path, *args)
    assert done.returncode == 2
    assert done.stdout == ""
    assert len(done.stderr.splitlines()) == 1
    assert done.stderr.startswith("error:") and wanted in done.stderr
    assert not sandbox.requests_matching("POST", "/v1/webhooks")


def test_cli_list_prints_every_webhook_and_whose_it_is(
    sandbox: Sandbox, webex: WebexClient, cli_env: dict[str, str], tmp_path: Path
) -> None:
    """`webhooks list` shows the bot's and others' webhooks, one line each, with status."""
    sync(webex, TARGET, SECRET)
    other = sandbox.register_webhook("https://other.example.com/hook", None, "rooms", "updated",
                                     name="other-app rooms")
    sandbox.disable_webhook(other["id"])
    done = run_cli(cli_env, tmp_path, "list")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 4
    for name in NAMES:
        line = next(line for line in lines if repr(name) in line)
        assert line.split()[:2] == ["active", "bot"] and line.endswith(f"-> {TARGET}")
    foreign = next(line for line in lines if "other-app rooms" in line)
    assert foreign.split()[:3] == ["inactive", "other", "rooms/updated"]
