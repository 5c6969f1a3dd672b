"""The buffering worker class leans on gthread's internals, so gunicorn is pinned to the major
they were tested on: an upgrade past it must be a deliberate change, never a silent one."""

from __future__ import annotations

import tomllib
from pathlib import Path

import gunicorn
from gunicorn.workers.gthread import STOP_KEEPALIVE_LINGER, TConn, ThreadWorker
from packaging.requirements import Requirement
from packaging.version import Version

from bot.web.gunicorn_worker import BufferingThreadWorker, Connection

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"

# The methods of gthread's ThreadWorker the buffering worker replaces: renamed in a release,
# gthread would run its own and the buffering would silently stop.
GTHREAD_HOOKS = (
    "init_process", "accept", "on_client_socket_readable", "handle_request", "finish_request",
    "wait_for_and_dispatch_events", "murder_pending", "murder_keepalived", "_cap_keepalive",
)


def gunicorn_requirement() -> Requirement:
    dependencies = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    return next(Requirement(line) for line in dependencies
                if Requirement(line).name == "gunicorn")


def test_gunicorn_is_bounded_below_the_next_major_of_the_tested_one() -> None:
    specifier = gunicorn_requirement().specifier
    installed = Version(gunicorn.__version__)
    assert installed in specifier
    assert Version(f"{installed.major}.99") in specifier
    assert Version(f"{installed.major + 1}.0") not in specifier
    assert not specifier.contains(f"{installed.major + 1}.0a1", prereleases=True)


def test_the_gthread_internals_the_worker_class_builds_on_are_there() -> None:
    assert issubclass(Connection, TConn)
    assert issubclass(BufferingThreadWorker, ThreadWorker)
    assert isinstance(STOP_KEEPALIVE_LINGER, int | float) and STOP_KEEPALIVE_LINGER > 0
    for hook in GTHREAD_HOOKS:
        assert callable(getattr(ThreadWorker, hook, None)), f"gthread has no {hook} any more"
        assert hook in vars(BufferingThreadWorker)
