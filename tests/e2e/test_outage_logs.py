"""An IT Glue outage during a run is a few short log lines, not a few per record and attempt.

Time is scaled: the "minute" of the outage summaries (the client's ``report_every``), the
breaker's cool-down, the engine's longest retry pause and the router's refresh interval
are MINUTE seconds, so an outage of three such minutes takes a few seconds of wall time.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from pipeline.logs import TEXT_WIDTH, TextFormatter
from pipeline.runner import Engine
from pipeline.settings import Settings
from pipeline.testing import with_sections
from tests.child_process import child_env

MINUTE = 1.5  # seconds standing for one minute
OUTAGE = 3 * MINUTE
FILES = 6


class Lines(logging.Handler):
    """The text lines an admin would see at INFO (production width), with their times."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.setFormatter(TextFormatter())
        self.seen: list[tuple[float, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.seen.append((time.monotonic(), self.format(record)))


def _client_factory(settings: Settings) -> Any:
    def build() -> Any:
        from core_client.client import ITGlueClient

        it = settings.itglue
        return ITGlueClient.from_instance(
            it.instance,
            base_url=it.base_url,
            api_key_env=it.api_key_env,
            ca_bundle=it.ca_bundle,
            state_dir=settings.state.dir,
            backoff_base=0.05,
            backoff_max=0.2,
            breaker_cooldown=MINUTE,
            report_every=MINUTE,
        )

    return build


def test_an_outage_is_a_few_short_lines_a_minute(
    emu: Any, drop: Path, e2e_settings: Any, caplog: Any
) -> None:
    (drop / "Acme Corp").mkdir()
    for i in range(FILES):
        (drop / "Acme Corp" / f"report-{i}.txt").write_text(f"report {i}\n")
    settings = e2e_settings(retry_base=0.05, retry_max=MINUTE, once_timeout=60)
    # the router asks IT Glue again at most once per refresh_interval, failed or not
    settings = with_sections(settings, routing={"refresh_interval": MINUTE})
    lines = Lines()
    root = logging.getLogger()
    root.addHandler(lines)
    caplog.set_level(logging.INFO)
    try:
        with Engine(settings, client_factory=_client_factory(settings)) as engine:
            emu.set_faults(errors=[{"rate": 1.0, "status": 503}])
            # the outage lasts OUTAGE from the first request it fails (the files are
            # extracted first, which takes a while on a busy machine)
            first_failure: list[float] = []
            done = threading.Event()

            def recover() -> None:
                while not done.wait(0.05):
                    if any(r["status"] == 503 for r in emu.state()["requests"]):
                        first_failure.append(time.monotonic())
                        break
                if not done.wait(OUTAGE):
                    emu.set_faults()

            recovery = threading.Thread(target=recover)
            recovery.start()
            try:
                summary = engine.run_once()
            finally:
                done.set()
                recovery.join()
            breaker = engine.context.itglue().circuit_breaker.get_stats()
    finally:
        root.removeHandler(lines)
    began = first_failure[0]
    assert summary.delivered == FILES and summary.ok, summary
    assert breaker["times_opened"] >= 1  # one run's retries opened it

    texts = [text for _, text in lines.seen]
    assert all(len(t) <= TEXT_WIDTH for t in texts), max(texts, key=len)
    during = [(t, text) for t, text in lines.seen if began <= t <= began + OUTAGE]
    # at most 5 lines in any "minute" of the outage (a sliding window)
    for t0, _ in during:
        window = [text for t, text in during if t0 <= t < t0 + MINUTE]
        assert len(window) <= 5, window
    assert len(during) <= 5 * OUTAGE / MINUTE, during
    outage = [t for t in texts if t.split(": ", 1)[-1].startswith("IT Glue unavailable")]
    assert "GET /organizations -> 503; retrying" in outage[0], outage
    assert any("still failing" in t and "failed attempts over" in t for t in outage), outage
    assert "recovered after" in outage[-1] and len(outage) <= 2 + OUTAGE / MINUTE, outage
    assert not [t for t in texts if "will retry" in t or "retry 1/" in t], texts


def test_json_logs_are_json_lines_only(tmp_path: Path, emu: Any) -> None:
    """Every line on stderr of ``once`` and of a signalled ``run`` parses as JSON."""
    drop = tmp_path / "drop"
    (drop / "Acme Corp").mkdir(parents=True)
    (drop / "Acme Corp" / "a.txt").write_text("a\n")
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        f"""
[itglue]
instance = "json"
base_url = "{emu.base_url}"
ca_bundle = "{emu.ca_file}"
api_key_env = "JSON_TEST_KEY"

[state]
dir = "{tmp_path / "state"}"

[pipeline]
transforms = ["mime", "route", "title"]
sink = "itglue"

[[sources]]
name = "drop"
type = "filesystem"
path = "{drop}"
organization_from = "subfolder"
stability_delay = 0
"""
    )
    env = child_env(JSON_TEST_KEY=emu.api_key)
    command = [sys.executable, "-m", "pipeline", "--log-format", "json"]
    emu.set_faults(errors=[{"next": 2, "status": 503}])  # a short outage: start and end
    once = subprocess.run(
        [*command, "once", "-c", str(cfg)], env=env, capture_output=True, text=True, timeout=60
    )
    assert once.returncode == 0, once.stderr
    docs = [json.loads(line) for line in once.stderr.splitlines()]
    assert any(d["msg"].startswith("IT Glue unavailable: recovered") for d in docs), docs

    run = subprocess.Popen(
        [*command, "run", "-c", str(cfg)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        assert run.stderr is not None
        seen = []
        while time.monotonic() < deadline:  # until the daemon says it runs
            seen.append(run.stderr.readline())
            if '"running:' in seen[-1] or not seen[-1]:
                break
        run.terminate()
        rest, err = run.communicate(timeout=30)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    lines = [line for line in [*seen, *err.splitlines()] if line.strip()]
    docs = [json.loads(line) for line in lines]
    assert any(d["msg"].startswith("SIGTERM: stopping") for d in docs), lines
    assert not rest
