"""The metrics as an operator scrapes them: ``python -m bot serve`` (two web processes and a worker
process) against the sandbox, ``/metrics`` read on METRICS_PORT with prometheus_client's own
parser, every count checked exactly against what the test sent and what the sandbox received.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from bot.devtools.as_deployed import LaunchedBot, free_port, launched_bot, sandbox_env
from bot.devtools.sandbox import Sandbox
from bot.devtools.sandbox.delivery import sign
from bot.metrics import record
from bot.settings import SettingsError, server_settings
from bot.web.envelope import SIGNATURE_HEADER
from tests.support.faults import SECRET, fleet, poll_until
from tests.support.keys import MEETING_KEYS

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(url: str) -> Samples:
    """Every sample of a scrape, by name and labels."""
    text = requests.get(url, timeout=10).text
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value; 0 when the series does not exist."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of the samples of ``name`` whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(v for (n, found), v in samples.items() if n == name and wanted <= found)


def counts_itself(bot: LaunchedBot, pid: int) -> bool:
    """Whether a new process has counted itself alive: its file of summed live gauges, which
    only that count writes, exists."""
    assert bot.metrics_dir is not None
    return (bot.metrics_dir / f"gauge_livesum_{pid}.db").exists()


def refuse(bot: LaunchedBot) -> Counter[int]:
    """Three deliveries the intake refuses: a wrong signature, a body that is no webhook, one
    too large for MAX_BODY_BYTES (refused by Flask before the intake reads it)."""
    bodies = [(b'{"id": "x"}', "0" * 40), (b"not json", sign(b"not json", SECRET)),
              (b"x" * 300_000, "")]
    return Counter(requests.post(bot.webhook_url, data=body, timeout=10,
                                 headers={SIGNATURE_HEADER: signature}).status_code
                   for body, signature in bodies)


def test_a_scrape_counts_every_webhook_once_whichever_web_process_took_it(tmp_path: Path) -> None:
    with fleet(tmp_path, workers=2, seed=31) as crew:
        [bot] = crew.bots
        helps = [crew.help_event() for _ in range(6)]
        before = bot.web_pids()
        poll_until(lambda: all(counts_itself(bot, pid) for pid in before), 30)
        statuses = Counter(made.status for tries in crew.deliver_all(helps[:3]) for made in tries)
        # A web process dies and gunicorn starts another: what the dead one counted stays.
        killed = bot.web_pids()[0]
        os.kill(killed, signal.SIGKILL)
        [new] = poll_until(lambda: [pid for pid in bot.web_pids() if pid not in before], 30)
        poll_until(lambda: counts_itself(bot, new), 30)
        statuses += Counter(made.status for tries in crew.deliver_all(helps[3:]) for made in tries)
        statuses[crew.deliver(helps[0]).status] += 1  # Webex delivering one again
        statuses += refuse(bot)
        [(person, form)] = crew.forms(1)
        statuses[200] += 1  # the "new" that brought the form: forms() saw its 200
        submit = crew.submit_event(person, form, "Ward round")
        statuses += Counter(made.status for made in crew.deliver_until_accepted(submit))
        crew.wait_idle(60)

        samples = scrape(bot.metrics_url)
        public = requests.get(bot.url + "/metrics", timeout=10)
        webex_calls = [r for r in crew.sandbox.requests if r.path.startswith("/v1/")]
        # serve asks who the bot is before its processes count anything: not among them
        webex_calls.remove(next(r for r in webex_calls if r.path == "/v1/people/me"))
        broker_calls = crew.sandbox.requests_matching("POST", "/api/v2/joseencrypt")

    assert public.status_code == 404, "the metrics are not on the public webhook port"
    accepted = 6 + 2  # six "help", the "new" that brought the form, the submit
    assert statuses == Counter({200: accepted + 1, 401: 1, 400: 1, 413: 1})
    webhooks = "icbot_webhooks_total"
    assert value(samples, webhooks, status="200", outcome="accepted") == accepted
    assert value(samples, webhooks, status="200", outcome="duplicate") == 1
    assert value(samples, webhooks, status="401", outcome="bad_signature") == 1
    assert value(samples, webhooks, status="400", outcome="malformed") == 1
    assert value(samples, webhooks, status="413", outcome="too_large") == 1
    assert total(samples, webhooks) == sum(statuses.values())

    events = "icbot_events_total"
    assert value(samples, events, source="webhook", kind="messages") == 7
    assert value(samples, events, source="webhook", kind="attachmentActions") == 1
    assert value(samples, "icbot_jobs_total", outcome="done") == accepted
    assert value(samples, "icbot_jobs_total", outcome="abandoned") == 0
    assert value(samples, "icbot_accepted_to_done_seconds_count") == accepted
    assert value(samples, "icbot_queue_jobs") == 0
    assert value(samples, "icbot_queue_oldest_job_age_seconds") == 0
    assert value(samples, "icbot_store_up") == 1
    assert value(samples, "icbot_processes", role="web") == 2  # the dead one no longer counts
    assert value(samples, "icbot_processes", role="worker") == 1

    calls = "icbot_upstream_calls_total"
    assert total(samples, calls, service="webex") == len(webex_calls)
    assert value(samples, calls, service="broker", status="ok") == len(broker_calls) == 1
    assert value(samples, "icbot_upstream_call_duration_seconds_count",
                 service="broker") == 1
    assert not [labels for (name, labels) in samples if name.startswith("icbot_") and any(
        "@" in v or "Y2lzY29zcGFyazovL" in v for _, v in labels)], "a person or space in a label"


def test_a_worker_process_that_dies_no_longer_counts_as_alive(tmp_path: Path) -> None:
    with fleet(tmp_path, workers=1, seed=32) as crew:
        [bot] = crew.bots
        [first] = bot.worker_pids()
        poll_until(lambda: counts_itself(bot, first), 30)
        os.kill(first, signal.SIGKILL)
        [second] = poll_until(lambda: [pid for pid in bot.worker_pids() if pid != first], 30)
        poll_until(lambda: counts_itself(bot, second), 30)
        samples = scrape(bot.metrics_url)
    assert value(samples, "icbot_processes", role="worker") == 1  # 2 if the dead one counted


@pytest.mark.parametrize(("status", "said", "outcome"), [
    (200, "accepted", "accepted"), (200, "too old", "too_old"), (503, "busy", "busy"),
    (503, "storage unavailable", "storage_unavailable"),
    (400, "Expecting value: line 1 column 1 (char 0)", "malformed"),
    (401, "invalid signature", "bad_signature"), (413, "body too large", "too_large"),
])
def test_a_webhook_is_counted_under_a_word_of_a_closed_set(status: int, said: str,
                                                           outcome: str) -> None:
    before = record.WEBHOOKS.labels(str(status), outcome)._value.get()
    record.webhook(status, said)
    assert record.WEBHOOKS.labels(str(status), outcome)._value.get() == before + 1


def test_the_metrics_port_is_not_the_webhook_port() -> None:
    with pytest.raises(SettingsError, match="METRICS_PORT must differ from PORT"):
        server_settings({"PORT": "9000", "METRICS_PORT": "9000"})
    assert server_settings({"HOST": "10.0.0.5"}).metrics_bind == "10.0.0.5:9464"
    assert server_settings({"HOST": "::", "METRICS_HOST": "127.0.0.1",
                            "METRICS_PORT": "9100"}).metrics_bind == "127.0.0.1:9100"
    assert server_settings({}).gunicorn_command("x:app").count("--bind") == 2
    assert server_settings({"METRICS_PORT": "0"}).gunicorn_command("x:app").count("--bind") == 1


def test_under_events_websocket_the_web_processes_serve_the_same_metrics(tmp_path: Path) -> None:
    """``serve`` with EVENTS=websocket: the worker process holds the socket, the web processes
    (there for /healthz) answer the scrapes, and the socket's life is in them."""
    with Sandbox(seed=33) as box:
        env = sandbox_env(box, f"sqlite:///{tmp_path}/bot.sqlite3", SECRET, EVENTS="websocket",
                          U2C_URL=box.u2c_url)
        with launched_bot(env, workers=2, log_dir=tmp_path) as bot:
            box.wait_for(box.mercury_connected, timeout=30)
            box.close_mercury(1011, "")  # Webex drops it once: one reconnect
            box.wait_for(lambda: len(box.mercury_handshakes) == 2 and box.mercury_connected(),
                         timeout=30)
            person = box.add_person("ida@clinic.example.com", "Ida")
            room = box.direct_room(person)
            box.post_message(person, room, "help")
            box.wait_for(lambda: [m for m in box.messages_in(room)
                                  if m["personId"] == box.bot["id"]], timeout=30)
            samples = poll_until(lambda: (found := scrape(bot.metrics_url)) and value(
                found, "icbot_jobs_total", outcome="done") == 1 and found, 30)
    assert value(samples, "icbot_websocket_connected") == 1
    assert value(samples, "icbot_websocket_reconnects_total") == 1
    assert value(samples, "icbot_websocket_frames_total") >= 1
    # once, by the socket or by the catch-up after the reconnect, whichever took it first
    assert sum(value(samples, "icbot_events_total", source=source, kind="messages")
               for source in ("websocket", "catch-up")) == 1
    assert total(samples, "icbot_webhooks_total") == 0
    assert value(samples, "icbot_processes", role="worker") == 1


def test_listen_on_its_own_serves_its_metrics_and_names_a_metrics_port_in_use(
        tmp_path: Path) -> None:
    with Sandbox(seed=34) as box:
        port = free_port()
        env = {**os.environ, "WEBEX_BOT_TOKEN": box.bot_token, "U2C_URL": box.u2c_url,
               "WEBEX_API_URL": box.webex_base_url, "IC_BROKER_URL": box.broker_url,
               "STORAGE_URL": f"sqlite:///{tmp_path}/bot.sqlite3", "METRICS_PORT": str(port),
               "HOST": "127.0.0.1", "LOG_LEVEL": "WARNING", "MEETING_KEYS": MEETING_KEYS}
        listening = subprocess.Popen([sys.executable, "-m", "bot", "listen"], env=env)
        try:
            box.wait_for(box.mercury_connected, timeout=30)
            url = f"http://127.0.0.1:{port}/metrics"
            samples = poll_until(lambda: value(found := scrape(url),
                                               "icbot_websocket_connected") == 1 and found, 30)
            second = subprocess.run([sys.executable, "-m", "bot", "listen"], env=env,
                                    capture_output=True, text=True, timeout=60, check=False)
        finally:
            listening.send_signal(signal.SIGTERM)
            listening.wait(timeout=30)
    assert value(samples, "icbot_queue_jobs") == 0 and value(samples, "icbot_store_up") == 1
    assert second.returncode == 2
    assert second.stderr.splitlines()[-1].startswith(
        f"error: METRICS_PORT: cannot listen on 127.0.0.1 port {port}")


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Prometheus) is not "
                    "installed")
def test_the_readmes_alerts_fire_when_the_queue_stalls_or_a_job_is_abandoned(
        tmp_path: Path) -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    [rules] = re.findall(r"```yaml\n(groups:.*?)```", readme, re.S)
    (tmp_path / "rules.yml").write_text(rules)
    stalled = " ".join(str(60 * minute) for minute in range(13))  # its oldest job ages
    (tmp_path / "test.yml").write_text(json.dumps({
        "rule_files": ["rules.yml"],
        "tests": [{"interval": "1m", "input_series": [
            {"series": 'icbot_queue_oldest_job_age_seconds{instance="stalled"}',
             "values": stalled},
            {"series": 'icbot_queue_oldest_job_age_seconds{instance="draining"}',
             "values": "0 30 0 45 0 20 0 10 0 50 0 30 0"},
            {"series": 'icbot_jobs_total{outcome="abandoned",instance="stalled"}',
             "values": "0 0 0 1 1 1 1 1 1 1 1 1 1"},
            {"series": 'icbot_jobs_total{outcome="abandoned",instance="draining"}',
             "values": "0 0 0 0 0 0 0 0 0 0 0 0 0"},
        ], "alert_rule_test": [
            {"eval_time": "12m", "alertname": "BotQueueNotDraining", "exp_alerts": [
                {"exp_labels": {"instance": "stalled"}, "exp_annotations": {
                    "summary": "The bot's oldest event has waited 720 s: is a worker process "
                               "running?"}}]},
            {"eval_time": "12m", "alertname": "BotAbandonedJobs", "exp_alerts": [
                {"exp_labels": {"instance": "stalled", "outcome": "abandoned"},
                 "exp_annotations": {"summary": "The bot gave up on events in the last hour: "
                                                "python -m bot abandoned says why."}}]},
        ]}],
    }))
    checked = subprocess.run(["promtool", "test", "rules", "test.yml"], cwd=tmp_path,
                             capture_output=True, text=True, timeout=60, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr
