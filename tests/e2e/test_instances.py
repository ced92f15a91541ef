"""One pipeline, two IT Glue instances: two emulators with their own keys, CAs and rate
budgets. Each document lands in the instance its rule (or source) names, the same
content lands once in each, and a refused key on one leaves the other delivering."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline.runner import Engine
from pipeline.settings import Settings, parse_settings

PROD_KEY_ENV = "ITGLUE_PROD_TEST_KEY"
CREATE_DOCUMENT = "/organizations/:org_id/relationships/documents"


@pytest.fixture
def emu_prod() -> Iterator[Any]:
    from itglue_emulator import run_emulator

    with run_emulator(api_key="prod-key", tls=True, seed="demo", random_seed=1) as e:
        yield e


@pytest.fixture
def emu_sandbox() -> Iterator[Any]:
    from itglue_emulator import run_emulator

    with run_emulator(api_key="sandbox-key", tls=True, seed="demo", random_seed=2) as e:
        yield e


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path]:
    drop, lab = tmp_path / "drop", tmp_path / "lab"
    drop.mkdir()
    lab.mkdir()
    return drop, lab


@pytest.fixture
def sandbox_key_file(tmp_path: Path, emu_sandbox: Any) -> Path:
    path = tmp_path / "sandbox.key"
    path.write_text(emu_sandbox.api_key)
    path.chmod(0o600)
    return path


@pytest.fixture
def two_instances(
    emu_prod: Any,
    emu_sandbox: Any,
    folders: tuple[Path, Path],
    sandbox_key_file: Path,
    ingest_state_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Callable[..., Settings]:
    """Settings with instances ``prod`` (key in a variable, the default) and ``sandbox``
    (key in a file, a smaller budget); files named ``sandbox-*`` go to the sandbox by
    rule, every record of the ``lab`` source by the source's ``instance``."""
    monkeypatch.setenv(PROD_KEY_ENV, emu_prod.api_key)
    drop, lab = folders

    def make(
        rules: list[dict[str, Any]] | None = None, *, raw: bool = False, **sections: Any
    ) -> Any:
        if rules is None:
            rules = [{"match": {"file_name": "^sandbox-"}, "instance": "sandbox"}]
        data = {
            "itglue": {
                "default_instance": "prod",
                "instances": {
                    "prod": {
                        "base_url": emu_prod.base_url,
                        "ca_bundle": str(emu_prod.ca_file),
                        "api_key_env": PROD_KEY_ENV,
                        "rate_limit": 3000,
                    },
                    "sandbox": {
                        "base_url": emu_sandbox.base_url,
                        "ca_bundle": str(emu_sandbox.ca_file),
                        "api_key_file": str(sandbox_key_file),
                        "rate_limit": 600,
                        "rate_share": 0.5,
                    },
                },
            },
            "state": {"dir": str(ingest_state_dir)},
            "pipeline": {
                "transforms": ["mime", "route", "title"],
                "workers": 2,
                "retry_base": 0.05,
                "retry_max": 0.5,
                "once_timeout": 30,
            },
            "routing": {"rules": rules},
            "sources": [
                {
                    "name": "drop",
                    "type": "filesystem",
                    "path": str(drop),
                    "organization_from": "subfolder",
                    "stability_delay": 0,
                    "after": "move",
                },
                {
                    "name": "lab",
                    "type": "filesystem",
                    "path": str(lab),
                    "organization": "Globex",
                    "instance": "sandbox",
                    "stability_delay": 0,
                    "after": "move",
                },
            ],
            **sections,
        }
        return data if raw else parse_settings(data)

    return make


@pytest.fixture
def engines() -> Iterator[list[Engine]]:
    made: list[Engine] = []
    yield made
    for e in made:
        e.close()


def put(folder: Path, org: str | None, name: str, data: bytes) -> None:
    target = folder / org if org else folder
    target.mkdir(exist_ok=True)
    (target / name).write_bytes(data)


def landed(emu: Any) -> dict[str, tuple[str, bytes]]:
    """Attachment name -> (its document's organization, its bytes), as the emulator has it."""
    records = emu.state()["records"]
    orgs = {str(o["id"]): o["name"] for o in records["organizations"]}
    doc_org = {str(d["id"]): orgs[str(d["organization-id"])] for d in records["documents"]}
    out = {}
    for att in records["attachments"]:
        assert att["name"] not in out, f"{att['name']} landed twice"
        out[att["name"]] = (doc_org[str(att["resource-id"])], emu.attachment_content(att["id"]))
    return out


def calls(emu: Any) -> Counter[str]:
    """Successful requests by method and route."""
    out: Counter[str] = Counter()
    for r in emu.state()["requests"]:
        if r["status"] < 400:
            out[f"{r['method']} {r['route']}"] += r["count"]
    return out


def test_each_document_lands_in_the_instance_its_rule_names(
    two_instances, emu_prod, emu_sandbox, folders, ingest_state_dir, engines
) -> None:
    drop, lab = folders
    same = b"the same minutes, filed for production and for the sandbox\n"
    put(drop, "Acme Corp", "report.txt", b"quarterly report\n")  # default: prod
    put(drop, "Globex", "sandbox-trial.txt", b"a trial run\n")  # rule: sandbox
    put(lab, None, "lab-note.txt", b"a lab note\n")  # the source's instance: sandbox
    put(drop, "Initech", "minutes.txt", same)  # prod ...
    put(drop, "Initech", "sandbox-minutes.txt", same)  # ... and the same content in sandbox
    engine = Engine(two_instances())
    engines.append(engine)

    summary = engine.run_once()

    assert (summary.delivered, summary.duplicate, summary.failed, summary.pending) == (5, 0, 0, 0)
    assert landed(emu_prod) == {
        "report.txt": ("Acme Corp", b"quarterly report\n"),
        "minutes.txt": ("Initech", same),
    }
    assert landed(emu_sandbox) == {
        "sandbox-trial.txt": ("Globex", b"a trial run\n"),
        "lab-note.txt": ("Globex", b"a lab note\n"),
        "sandbox-minutes.txt": ("Initech", same),
    }
    # each instance was asked for its own organizations once and got its own documents
    assert calls(emu_prod)["POST " + CREATE_DOCUMENT] == 2
    assert calls(emu_sandbox)["POST " + CREATE_DOCUMENT] == 3
    assert calls(emu_prod)["GET /organizations"] == 1
    assert calls(emu_sandbox)["GET /organizations"] == 1
    # each instance's client counted its requests against its own budget and state file
    clients = engine.context.built_clients()
    assert list(clients) == ["prod", "sandbox"]
    for name, emu, budget in (("prod", emu_prod, 3000), ("sandbox", emu_sandbox, 300)):
        stats = clients[name].rate_limiter.get_stats()
        assert stats["budget"] == budget
        assert stats["shared_state_file"] == str(ingest_state_dir / f"{name}.ratelimit")
        assert stats["requests_in_window"] == sum(r["count"] for r in emu.state()["requests"])
    assert (ingest_state_dir / "sandbox.db").is_file()  # the sandbox's own cache

    # the same content again, in both instances: a duplicate in each, nothing uploaded
    put(drop, "Initech", "minutes-again.txt", same)
    put(drop, "Initech", "sandbox-minutes-again.txt", same)
    before = (calls(emu_prod), calls(emu_sandbox))
    summary = engine.run_once()
    assert (summary.delivered, summary.duplicate) == (0, 2)
    assert (calls(emu_prod), calls(emu_sandbox)) == before


def test_a_refused_key_on_one_instance_leaves_the_other_delivering(
    two_instances, emu_prod, emu_sandbox, folders, sandbox_key_file, engines
) -> None:
    drop, _ = folders
    put(drop, "Globex", "sandbox-first.txt", b"first\n")
    engine = Engine(two_instances())
    engines.append(engine)
    assert engine.run_once().delivered == 1  # the sandbox's organizations are cached now

    emu_sandbox.set_api_key("regenerated-sandbox-key")  # the configured key is refused now
    put(drop, "Acme Corp", "invoice.txt", b"an invoice\n")
    put(drop, "Globex", "sandbox-second.txt", b"second\n")
    summary = engine.run_once()

    assert (summary.delivered, summary.failed, summary.pending) == (1, 0, 1)
    assert summary.key_refused is not None
    assert "IT Glue instance 'sandbox' refused the API key" in summary.key_refused
    assert set(landed(emu_prod)) == {"invoice.txt"}
    assert set(landed(emu_sandbox)) == {"sandbox-first.txt"}
    (waiting,) = engine.ledger.waiting()
    assert waiting.source_ref.endswith("sandbox-second.txt")
    assert waiting.reason is not None and "instance 'sandbox'" in waiting.reason
    engine.close()

    # the key is fixed; routing would now send the file to prod (no rule), but the
    # record was routed to the sandbox before the restart and goes there
    sandbox_key_file.write_text("regenerated-sandbox-key")
    restarted = Engine(two_instances(rules=[]))
    engines.append(restarted)
    summary = restarted.run_once()
    assert (summary.delivered, summary.pending, summary.key_refused) == (1, 0, None)
    assert set(landed(emu_sandbox)) == {"sandbox-first.txt", "sandbox-second.txt"}
    assert set(landed(emu_prod)) == {"invoice.txt"}


def test_readyz_metrics_status_and_health_say_which_instance_refuses_its_key(
    two_instances, emu_prod, emu_sandbox, folders, sandbox_key_file, tmp_path, engines
) -> None:
    import threading

    import requests
    from click.testing import CliRunner

    from pipeline.commands.client import health
    from pipeline.commands.engine import status
    from tests.cli.toml_text import write
    from tests.observability.obs_helpers import scrape, value
    from tests.waiting import wait_for

    drop, _ = folders
    put(drop, "Acme Corp", "invoice.txt", b"an invoice\n")
    put(drop, "Globex", "sandbox-first.txt", b"first\n")
    observability = {"listen": "127.0.0.1:0", "probe_interval": 0.2, "heartbeat_interval": 0.5}
    engine = Engine(two_instances(observability=observability))
    engines.append(engine)
    for name in engine.context.instances:  # as `run` does: every client before the start
        engine.context.itglue(name)
    stop = threading.Event()
    daemon = threading.Thread(target=engine.run, args=(stop,), daemon=True)
    daemon.start()
    try:
        url = wait_for(lambda: engine.watch and engine.watch.url, message="the endpoint")
        wait_for(lambda: "invoice.txt" in landed(emu_prod), message="prod's delivery")
        wait_for(lambda: "sandbox-first.txt" in landed(emu_sandbox), message="the sandbox's")
        emu_sandbox.set_api_key("regenerated-sandbox-key")  # the configured key is refused
        put(drop, "Globex", "sandbox-second.txt", b"second\n")
        put(drop, "Acme Corp", "receipt.txt", b"a receipt\n")
        wait_for(lambda: "receipt.txt" in landed(emu_prod), message="prod delivering on")
        wait_for(lambda: engine.ledger.waiting(), message="the sandbox's record to wait")

        def refused() -> dict[str, Any] | None:
            resp = requests.get(f"{url}/readyz", timeout=5)
            body: dict[str, Any] = resp.json()
            return body if resp.status_code == 503 and body["problems"] else None

        body = wait_for(refused, message="/readyz to name the refused instance")
        assert body["problems"] == [
            "IT Glue instance 'sandbox': IT Glue refused the API key (401/403)"
        ]
        assert body["instances"]["prod"]["key_accepted"] is True
        assert body["instances"]["sandbox"]["key_accepted"] is False
        samples = scrape(url)
        assert value(samples, "itglue_ingest_api_key_accepted", instance="prod") == 1
        assert value(samples, "itglue_ingest_api_key_accepted", instance="sandbox") == 0
        assert value(samples, "itglue_ingest_api_reachable", instance="sandbox") == 1
    finally:
        stop.set()
        daemon.join(30)
    assert set(landed(emu_sandbox)) == {"sandbox-first.txt"}
    assert set(landed(emu_prod)) == {"invoice.txt", "receipt.txt"}
    engine.close()

    config = write(tmp_path / "two.toml", two_instances(raw=True))
    out = CliRunner().invoke(status, ["-c", str(config)])
    lines = out.output.splitlines()
    start = lines.index("instances:")
    assert lines[start + 1].startswith(f"  prod (default): {emu_prod.base_url}, 0 waiting")
    assert lines[start + 2].startswith(
        f"  sandbox: {emu_sandbox.base_url}, 1 waiting: IT Glue instance 'sandbox' refused"
    )

    out = CliRunner().invoke(health, ["-c", str(config), "--json"])
    assert out.exit_code == 1
    import json

    report = json.loads(out.output)
    assert report["instances"]["prod"]["status"] == "healthy"
    assert report["instances"]["sandbox"]["status"] != "healthy"
    out = CliRunner().invoke(health, ["-c", str(config), "--instance", "prod"])
    assert out.exit_code == 0, out.output


def test_a_lost_create_is_reconciled_in_its_own_instance_although_ids_collide(
    two_instances, emu_prod, emu_sandbox, folders, engines
) -> None:
    """Document ids of two instances collide; a prod record's journaled document must
    not make the sandbox's reconciliation refuse the sandbox document with that id."""
    drop, _ = folders
    engine = Engine(two_instances())
    engines.append(engine)
    put(drop, "Initech", "minutes.txt", b"prod minutes\n")
    assert engine.run_once().delivered == 1
    (prod_doc,) = emu_prod.state()["records"]["documents"]

    # the sandbox stores the create, then the connection drops: the answer is lost
    emu_sandbox.set_faults(drop=[{"next": 1, "methods": ["POST"], "path_prefix": "/organizations"}])
    put(drop, "Globex", "sandbox-notes.txt", b"sandbox notes\n")
    summary = engine.run_once()

    assert (summary.delivered, summary.failed, summary.pending) == (1, 0, 0)
    (sandbox_doc,) = emu_sandbox.state()["records"]["documents"]  # adopted, not made twice
    assert str(sandbox_doc["id"]) == str(prod_doc["id"])  # the ids do collide
    assert set(landed(emu_sandbox)) == {"sandbox-notes.txt"}
    assert set(landed(emu_prod)) == {"minutes.txt"}
