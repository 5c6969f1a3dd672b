"""The ``links`` command as a real process: output, times, bad arguments and failures."""

from __future__ import annotations

import calendar
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from bot.devtools.sandbox import Sandbox

LINKS = [sys.executable, "-m", "bot", "links"]
HOST_BASE = "https://instant.webex.com/{vertical}/v1/login?int=jose&v=1&data="
GUEST_BASE = "https://instant.webex.com/{vertical}/v1/talk?int=jose&v=1&data="
SHORT = re.compile(r"^https://instant\.webex\.com/visit/[A-Za-z0-9]+$")
CIPHERS = Sandbox(seed=0)  # never started: it only opens the ciphers of the command's sandbox


def clean_env(**extra: str) -> dict[str, str]:
    """The test's environment without any bot setting, plus ``extra``."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("WEBEX_", "IC_", "SANDBOX_", "WEBHOOK_"))
        and name not in ("DEFAULT_TIMEZONE", "LOG_LEVEL")
    }
    env.update(extra)
    return env


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*LINKS, *args], capture_output=True, text=True, env=env or clean_env(), timeout=60
    )


def utc(*fields: int) -> int:
    return calendar.timegm((*fields, 0))


def claims_of(url: str) -> dict:
    return CIPHERS.decrypt(url.partition("data=")[2])[1]


# Every offline command, by name. They are run once, all at the same time, by ``runs``: each
# is a whole interpreter, and running them side by side keeps this module within seconds.
COMMANDS: dict[str, list[str]] = {
    "text": ["--subject", "Follow-up", "--hosts", "1", "--guests", "3", "--short",
             "--device", "room@example.com", "--vertical", "hc", "--sandbox"],
    "json-short": ["--subject", "Ward round", "--json", "--hosts", "2", "--guests", "4",
                   "--short", "--sandbox"],
    "json-25": ["--subject", "Ward round", "--json", "--hosts", "0", "--guests", "25",
                "--iterations", "1000", "--sandbox"],
    "key-1": ["--subject", "Consultation", "--key", "k-1", "--json", "--sandbox"],
    "key-1-again": ["--subject", "Consultation", "--key", "k-1", "--json", "--sandbox"],
    "no-key": ["--subject", "Consultation", "--json", "--sandbox"],
    "paris-winter": ["--subject", "Follow-up", "--json", "--start", "2031-12-01 09:00",
                     "--timezone", "Europe/Paris", "--valid-for", "2h", "--sandbox"],
    "new-york-summer-week": ["--subject", "Follow-up", "--json", "--start", "2031-07-01 09:00",
                             "--timezone", "America/New_York", "--valid-for", "7d", "--sandbox"],
    "utc-default-2h": ["--subject", "Follow-up", "--json", "--start", "2031-12-01 09:00",
                       "--sandbox"],
    "valid-for-alone": ["--subject", "Follow-up", "--json", "--valid-for", "45m", "--sandbox"],
    "paris-spring-gap": ["--subject", "Follow-up", "--json", "--start", "2031-03-30 02:30",
                         "--timezone", "Europe/Paris", "--sandbox"],
    "no-token": ["--subject", "Follow-up"],
}

BAD_ARGUMENTS = {
    "unknown-option": (["--subject", "x", "--bogus"], "--bogus"),
    "hosts-30": (["--subject", "x", "--hosts", "30"], "--hosts"),
    "guests-26": (["--subject", "x", "--guests", "26"], "--guests"),
    "salt-length-4": (["--subject", "x", "--salt-length", "4"], "--salt-length"),
    "valid-for-3x": (["--subject", "x", "--valid-for", "3x"], "--valid-for"),
    "valid-for-90d": (["--subject", "x", "--valid-for", "90d"], "--valid-for"),
    "start-garbage": (["--subject", "x", "--start", "garbage"], "--start"),
    "device-not-sip": (["--subject", "x", "--device", "notasip"], "notasip"),
    "no-such-zone": (["--subject", "x", "--timezone", "Mars/Base"], "Mars/Base"),
}


@dataclass(frozen=True)
class Run:
    """One finished command."""

    code: int
    out: str
    err: str
    started: float
    finished: float


@pytest.fixture(scope="module")
def runs() -> dict[str, Run]:
    """Run every command of the module side by side, once."""
    commands = dict(COMMANDS)
    commands.update({f"bad:{name}": [*args, "--sandbox"]
                     for name, (args, _) in BAD_ARGUMENTS.items()})
    started = time.time()
    procs = {
        name: subprocess.Popen([*LINKS, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env=clean_env())
        for name, args in commands.items()
    }
    outputs = {name: proc.communicate(timeout=60) for name, proc in procs.items()}
    finished = time.time()
    return {
        name: Run(procs[name].returncode, out, err, started, finished)
        for name, (out, err) in outputs.items()
    }


def succeeded(run: Run) -> dict:
    assert run.code == 0, run.err
    assert run.err == ""
    return json.loads(run.out)


def test_readable_output_has_labels_and_urls(runs):
    """Text output introduces Host 1 and Guest 1..n, each with its short and long URL."""
    result = runs["text"]
    assert result.code == 0, result.err
    assert result.err == ""
    lines = result.out.splitlines()
    assert lines[0] == "Follow-up"
    assert "  dials   room@example.com" in lines
    labels = [line for line in lines if re.fullmatch(r"(Host|Guest) \d+", line)]
    assert labels == ["Host 1", "Guest 1", "Guest 2", "Guest 3"]
    for label in labels:
        short, long = (line.strip() for line in lines[lines.index(label) + 1 :][:2])
        role = label.split()[0].lower()
        base = (HOST_BASE if role == "host" else GUEST_BASE).format(vertical="hc")
        assert SHORT.match(short), short
        assert long.startswith(base)
        claims = claims_of(long)
        assert claims["role"] == role and claims["index"] == int(label.split()[1]) - 1
        assert claims["flow"]["data"] == [{"uri": "room@example.com"}]
        assert short.endswith("/" + claims["short"])


@pytest.mark.parametrize(
    ("name", "hosts", "guests", "short"),
    [("json-short", 2, 4, True), ("json-25", 0, 25, False), ("no-key", 1, 1, False)],
)
def test_json_output(runs, name, hosts, guests, short):
    """--json prints one parseable object with the requested counts and short URLs when asked."""
    data = succeeded(runs[name])
    subject = "Consultation" if name == "no-key" else "Ward round"
    assert data["subject"] == subject
    assert data["sub"].startswith(subject.replace(" ", "-") + "-")
    assert (len(data["hosts"]), len(data["guests"])) == (hosts, guests)
    for group, base in (("hosts", HOST_BASE), ("guests", GUEST_BASE)):
        for link in data[group]:
            assert link["url"].startswith(base.format(vertical="gen"))
            assert claims_of(link["url"])["sub"] == data["sub"]
            if short:
                assert SHORT.match(link["short_url"])
            else:
                assert link["short_url"] is None


def test_same_key_same_meeting_other_key_other_meeting(runs):
    """--key makes the sub deterministic; without it (or with another) the sub differs."""
    first, again, other = (succeeded(runs[name])["sub"]
                           for name in ("key-1", "key-1-again", "no-key"))
    assert first == again != other


@pytest.mark.parametrize(
    ("name", "nbf", "exp"),
    [
        ("paris-winter", utc(2031, 12, 1, 8, 0), utc(2031, 12, 1, 10, 0)),
        ("new-york-summer-week", utc(2031, 7, 1, 13, 0), utc(2031, 7, 8, 13, 0)),
        ("utc-default-2h", utc(2031, 12, 1, 9, 0), utc(2031, 12, 1, 11, 0)),
    ],
)
def test_start_timezone_and_validity_become_epoch_seconds(runs, name, nbf, exp):
    """--start in --timezone and --valid-for give the expected nbf/exp, in output and ciphers."""
    data = succeeded(runs[name])
    assert (data["nbf"], data["exp"]) == (nbf, exp)
    for link in data["hosts"] + data["guests"]:
        claims = claims_of(link["url"])
        assert (claims["nbf"], claims["exp"]) == (nbf, exp)


def test_valid_for_without_start_counts_from_now(runs):
    """--valid-for alone ends the links that long after now."""
    result = runs["valid-for-alone"]
    data = succeeded(result)
    before, after = int(result.started), int(result.finished) + 1
    assert before <= data["nbf"] <= after
    assert before + 2700 <= data["exp"] <= after + 2700
    claims = claims_of(data["hosts"][0]["url"])
    assert "nbf" not in claims and claims["exp"] == data["exp"]


@pytest.mark.parametrize(("name", "named"), [(k, v[1]) for k, v in BAD_ARGUMENTS.items()])
def test_bad_arguments_exit_2_with_one_error_line(runs, name, named):
    """A bad argument exits 2 with exactly one stderr line, "error: ..." naming the problem."""
    result = runs[f"bad:{name}"]
    assert result.code == 2
    assert result.out == ""
    [line] = result.err.splitlines()
    assert line.startswith("error:")
    assert named in line
    assert not any(field in line for field in ("numHost", "numGuest", "saltLength", "jwt."))


def test_without_valid_for_the_links_last_default_valid_for(runs):
    """No --valid-for: DEFAULT_VALID_FOR (2h unless set, here 3d), as in the chat; not the
    broker's 15 minutes."""
    result = runs["no-key"]
    data = succeeded(result)
    assert int(result.started) + 7200 <= data["exp"] <= int(result.finished) + 7201
    started = time.time()
    three_days = run("--subject", "Follow-up", "--json", "--sandbox",
                     env=clean_env(DEFAULT_VALID_FOR="3d"))
    exp = json.loads(three_days.stdout)["exp"]
    assert int(started) + 3 * 86400 <= exp <= int(time.time()) + 3 * 86400 + 1


def test_without_token_and_sandbox_names_the_variable(runs):
    """Without --sandbox and WEBEX_BOT_TOKEN the command exits 2 naming the variable."""
    result = runs["no-token"]
    assert result.code == 2
    assert result.out == ""
    [line] = result.err.splitlines()
    assert line.startswith("error:") and "WEBEX_BOT_TOKEN" in line


@pytest.fixture
def failing_broker() -> Iterator[dict[str, str]]:
    """A sandbox process whose broker answers the first joseencrypt with 401."""
    command = [sys.executable, "-m", "bot.devtools.sandbox.cli", "--port", "0",
               "--fault", "POST /api/v2/joseencrypt status=401 times=1"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True) as proc:
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            assert line, proc.stderr.read() if proc.stderr else "the sandbox printed nothing"
            yield json.loads(line)
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def test_upstream_failure_exits_1_with_the_explanation(failing_broker):
    """A 401 from the broker exits 1 with the explanation; the same settings work afterwards."""
    token = failing_broker["bot_token"]
    env = clean_env(WEBEX_BOT_TOKEN=token, IC_BROKER_URL=failing_broker["broker_url"],
                    LOG_LEVEL="DEBUG")
    failed = run("--subject", "Follow-up", "--guests", "2", env=env)
    assert failed.returncode == 1
    assert failed.stdout == ""
    last = failed.stderr.splitlines()[-1]
    assert last.startswith("error: Instant Connect did not accept the bot's token")
    assert "Instant Connect is activated" in last
    assert "[HTTP 401]" in last and "Reference: ROUTER_" in last
    assert '"message": "instant connect answered"' in failed.stderr  # the logs were on
    assert token not in failed.stderr

    worked = run("--subject", "Follow-up", "--guests", "2", "--json", env=env)
    assert worked.returncode == 0, worked.stderr
    assert len(json.loads(worked.stdout)["guests"]) == 2
    assert token not in worked.stdout + worked.stderr


def test_a_start_the_clocks_skip_is_told_with_the_time_used(runs):
    """02:30 does not exist in Paris on 30 March 2031: stderr says 03:30 was used, as sent."""
    run = runs["paris-spring-gap"]
    assert run.code == 0
    assert run.err.strip() == ("note: 02:30 does not exist on Sun 30 Mar in Europe/Paris: the "
                               "clocks go forward then. The start is 03:30 instead.")
    assert json.loads(run.out)["nbf"] == utc(2031, 3, 30, 1, 30)  # 03:30 CEST
