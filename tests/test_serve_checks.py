"""``python -m bot serve`` checks everything first: one line naming the mistake, exit 2.

Settings alone are checked by ``Settings.from_env``; what only trying can tell (the store
answers and persists, the device catalog is usable) by ``preflight``. Each mistake here used to
start gunicorn and print 95 to 180 lines of tracebacks from both workers.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bot.devtools.as_deployed import free_port
from bot.secret import Secret
from bot.service import preflight
from bot.settings import Settings, SettingsError
from cards.inputs import CatalogDevice
from tests.support.faults import RedisProcess
from tests.support.keys import MEETING_KEYS

PASSWORD = "hunter2-redis-password"
BASE = {"WEBEX_BOT_TOKEN": "tok-serve-checks", "WEBHOOK_SECRET": "whs-serve-checks",
        "MEETING_KEYS": MEETING_KEYS}


def serve(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -m bot serve`` with these settings (it must stop before gunicorn)."""
    environment = {key: value for key, value in os.environ.items()
                   if key not in ("LOG_LEVEL", "STORAGE_URL", "WEB_CONCURRENCY", "PORT")}
    environment.update({"STORAGE_URL": f"sqlite:///{tmp_path}/bot.sqlite3", **BASE, **env})
    return subprocess.run([sys.executable, "-m", "bot", "serve"], env=environment,
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)


def doorbell_taken(tmp_path: Path) -> str:
    """A SQLite file whose wake-up pipe's name is taken by a plain file."""
    (tmp_path / "taken.sqlite3-wake").write_text("mine")
    return f"sqlite:///{tmp_path}/taken.sqlite3"


def corrupt_database(tmp_path: Path) -> str:
    path = tmp_path / "corrupt.sqlite3"
    path.write_bytes(b"not a database at all" * 256)
    return f"sqlite:///{path}"


MISTAKES = [
    ("STORAGE_URL", "postgres://bot:secret@db/bot"),
    ("STORAGE_URL", "sqlite://x"),
    ("STORAGE_URL", "sqlite:///:memory:"),
    ("STORAGE_URL", "data/bot.sqlite3"),
    ("STORAGE_URL", f"redis://:{PASSWORD}@127.0.0.1:port/0"),
    ("STORAGE_URL", f"redis://bot:{PASSWORD}@127.0.0.1:{{closed}}/0"),
    ("STORAGE_URL", "{corrupt}"),
    ("STORAGE_URL", "{doorbell_taken}"),
    ("LOG_LEVEL", "LOUD"),
    ("WEB_CONCURRENCY", "two"),
    ("WEB_THREADS", "1_0"),
    ("WORKER_PROCESSES", "one"),
    ("PORT", "http"),
    ("PORT", "70000"),
    ("HOST", "0.0.0.0 8080"),
    ("WEBEX_API_URL", "https://webexapis.com"),
    ("DEVICE_CATALOG", "Lab=lab@localhost"),
    ("DEVICE_CATALOG", "Lab=lab@example.com;lab=lab2@example.com"),
    ("DEDUPE_RETENTION", "10m"),
    ("WEBHOOK_SECRET", "x"),
    ("WEBHOOK_SECRET_PREVIOUS", "old-and-short"),
    ("MEETING_KEYS", "not-a-key-at-all"),
    ("MEETING_KEYS", f"{MEETING_KEYS},{MEETING_KEYS}"),
]


@pytest.mark.parametrize(("name", "value"), MISTAKES, ids=[f"{n}={v}" for n, v in MISTAKES])
def test_a_mistake_is_one_line_naming_the_setting_and_exit_2(
    name: str, value: str, tmp_path: Path
) -> None:
    value = value.format(closed=free_port(), corrupt=corrupt_database(tmp_path),
                         doorbell_taken=doorbell_taken(tmp_path))
    result = serve(tmp_path, **{name: value})
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: {name}"), lines[0]
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert PASSWORD not in result.stderr and "secret@" not in result.stderr


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[Callable[..., RedisProcess]]:
    """Starts redis-servers with extra command-line options; kills them after the test."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    servers: list[RedisProcess] = []

    def start(*options: str) -> RedisProcess:
        folder = tmp_path / f"redis-{len(servers)}"
        folder.mkdir()
        servers.append(RedisProcess(folder, *options))
        servers[-1].start()
        return servers[-1]

    yield start
    for server in servers:
        server.kill()


def settings_for(url: str, **changes: object) -> Settings:
    values: dict[str, object] = {"bot_token": Secret("tok"), "storage_url": url, **changes}
    return Settings(**values)  # type: ignore[arg-type]


def test_a_redis_that_persists_nothing_is_refused_unless_allowed(
    redis_server: Callable[..., RedisProcess]
) -> None:
    url = redis_server("--appendonly", "no", "--save", "").url
    with pytest.raises(SettingsError, match=r"^STORAGE_URL: Redis persists nothing.*"
                                            r"ALLOW_VOLATILE_STORAGE=true"):
        preflight(settings_for(url))
    warnings = preflight(settings_for(url, allow_volatile_storage=True))
    assert len(warnings) == 1 and "persists nothing" in warnings[0]


def test_redis_with_aof_passes_and_snapshots_only_are_a_warning(
    redis_server: Callable[..., RedisProcess]
) -> None:
    assert preflight(settings_for(redis_server().url)) == []
    warnings = preflight(settings_for(redis_server("--appendonly", "no", "--save", "60 1").url))
    assert len(warnings) == 1 and "RDB snapshots only" in warnings[0]


def test_a_redis_that_forbids_config_is_said_plainly(
    redis_server: Callable[..., RedisProcess]
) -> None:
    """Managed services often rename CONFIG away: start, and say durability is unknown."""
    warnings = preflight(settings_for(redis_server("--rename-command", "CONFIG", "").url))
    assert len(warnings) == 1 and "would not show its persistence settings" in warnings[0]


def test_serve_refuses_a_volatile_redis_in_one_line(
    redis_server: Callable[..., RedisProcess], tmp_path: Path
) -> None:
    result = serve(tmp_path, STORAGE_URL=redis_server("--appendonly", "no", "--save", "").url)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: STORAGE_URL: Redis persists nothing (appendonly no, save ''): a restart loses "
        "every accepted event and dedupe record. Turn on appendonly (or RDB snapshots), or "
        "set ALLOW_VOLATILE_STORAGE=true to accept that."]


def test_the_catalog_the_form_would_refuse_is_refused_by_preflight(tmp_path: Path) -> None:
    settings = settings_for(f"sqlite:///{tmp_path}/bot.sqlite3", device_catalog=(
        CatalogDevice("Cart 7", "cart-7@clinic.example.com"),
        CatalogDevice("Lab", "sip:lab@@clinic"),
    ))
    with pytest.raises(SettingsError, match=r"^DEVICE_CATALOG: 'Lab' has 'sip:lab@@clinic'"):
        preflight(settings)


def test_a_good_deployment_passes_preflight_with_nothing_to_say(tmp_path: Path) -> None:
    settings = settings_for(f"sqlite:///{tmp_path}/bot.sqlite3", device_catalog=(
        CatalogDevice("Cart 7", "cart-7@clinic.example.com"),))
    assert preflight(settings) == []
