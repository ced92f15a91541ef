"""contrib/prometheus/alerts.yml passes ``promtool check rules`` and uses only metric
names the daemon exports."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from pipeline.observability.collector import EngineCollector
from pipeline.plugins import get_plugin_manager
from pipeline.runner import Engine
from pipeline.settings import Settings
from pipeline.testing import with_sections

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "contrib" / "prometheus" / "alerts.yml"


def test_promtool_accepts_the_rules() -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: scripts/bootstrap.sh --test installs it (prometheus)"
    done = subprocess.run(
        [promtool, "check", "rules", str(ALERTS)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 9 rules found" in done.stdout


def exported_names(settings: Settings) -> set[str]:
    """Every family and sample name the collector of an engine (client built) exports."""
    with Engine(settings, get_plugin_manager(load_entrypoints=False)) as engine:
        engine.context.itglue()
        engine.source_health.trouble("drop", "not mounted")
        engine.tally.delivered("drop", 0.0)
        engine.tally.failed("drop", "unreadable: x")
        registry = CollectorRegistry(auto_describe=False)
        registry.register(EngineCollector(engine.observed_parts()))
        text = generate_latest(registry).decode()
    names: set[str] = set()
    for family in text_string_to_metric_families(text):
        names.add(family.name)
        names.update(s.name for s in family.samples)
    return names


def test_the_rules_use_exported_metrics(ingest_settings: Settings, tmp_path: Path) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    source = {"name": "drop", "type": "filesystem", "path": str(drop)}
    exported = exported_names(with_sections(ingest_settings, sources=[source]))
    used = set(re.findall(r"\bitglue_ingest_[a-z_]+", ALERTS.read_text()))
    assert used, "no metric in alerts.yml?"
    assert used <= exported, f"alerts.yml uses metrics that are not exported: {used - exported}"
