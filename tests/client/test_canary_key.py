"""The API key never leaves the client: a full DEBUG session with a canary key.

Everything a key could leak into is captured and searched byte by byte: every log
record of every logger (root and urllib3 at DEBUG, message + args + extras + exception
text), stdout/stderr at the file-descriptor level, reprs/strs/args of the client, its
parts and every exception, their tracebacks (with local variables), metrics, health,
and every byte of every file in the state directory (SQLite cache db, WAL, shm, the
rate-limiter state).
"""

from __future__ import annotations

import io
import json
import logging
import pickle
from pathlib import Path
from typing import Any

import pytest

from core_client import ITGlueClient, ITGlueError
from itglue_emulator import run_emulator
from tests.secret_canary import CaptureAll, describe
from tests.waiting import wait_for

CANARY = "ITG.canary-7f3a9c5e1d2b4a6f8e0c1b3d5f7a9c2e4b6d8f0a"
WRONG = "ITG.canary-wrong-0b1c2d3e4f5a6b7c8d9e"
# any 10-character piece of either key's secret part counts as a leak (a truncated or
# partially formatted key is still a leak)
FRAGMENTS = [CANARY, WRONG] + [
    key[i : i + 10]
    for key in (CANARY.split("canary-")[1], WRONG.split("wrong-")[1])
    for i in range(len(key) - 9)
]


def _leaks(text: str | bytes) -> list[str]:
    data = text if isinstance(text, bytes) else text.encode("utf-8", "backslashreplace")
    return [f for f in FRAGMENTS if f.encode() in data]


def test_canary_key_never_appears(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    handler = CaptureAll()
    root = logging.getLogger()
    old_level = root.level
    urllib3_logger = logging.getLogger("urllib3")
    old_u3 = urllib3_logger.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    urllib3_logger.setLevel(logging.DEBUG)
    texts: list[str] = []
    state = tmp_path / "state"
    try:
        with run_emulator(api_key=CANARY, rate_limit=(40, 2.0), retry_after=True) as emu:
            client = ITGlueClient.from_instance(
                "canary",
                base_url=emu.base_url,
                api_key=CANARY,
                ca_bundle=emu.ca_file,
                state_dir=state,
                backoff_base=0.01,
                backoff_max=0.02,
                breaker_cooldown=0.2,
                rate_penalty_seconds=0.5,
            )
            errors: list[BaseException] = []

            def expect_error(fn: Any, *args: Any, **kw: Any) -> None:
                try:
                    fn(*args, **kw)
                except ITGlueError as e:
                    errors.append(e)
                else:
                    raise AssertionError(f"{fn} did not fail")

            emu.seed({"organizations": 5, "configurations": 1500})
            orgs = list(client.list_organizations())
            assert len(list(client.list_configurations())) == 1500
            org = client.create_organization("Canary Corp")
            doc = client.create_document(org.id, "Doc")
            client.create_document_section(doc.id, "Document::Text", "<p>x</p>")
            f = tmp_path / "file.bin"
            f.write_bytes(b"0123456789" * 5000)
            att = client.upload_attachment("documents", doc.id, path=f)
            client.upload_attachment(
                "documents", doc.id, stream=io.BytesIO(b"abc"), file_name="s.txt"
            )
            assert client.download_attachment("documents", doc.id, att) == f.read_bytes()
            client.publish_document(doc.id)
            # the metadata cache lives in the state dir too
            client.cache.refresh_organizations(client.list_organizations())
            client.cache.record_document(
                doc, sha256="0" * 64, size=f.stat().st_size, organization_id=org.id
            )
            client.cache.smart_get_organization(orgs[0].id, api_client=client)
            # 401 with a wrong key (also a canary)
            bad = ITGlueClient.from_instance(
                "canary-bad",
                base_url=emu.base_url,
                api_key=WRONG,
                ca_bundle=emu.ca_file,
                state_dir=state,
            )
            expect_error(lambda: list(bad.list_organizations()))
            texts.append(json.dumps(bad.health_check().as_dict()))
            texts += [repr(bad), str(bad), repr(vars(bad)), repr(vars(bad._transport))]
            bad.close()
            # 404, 422
            expect_error(client.get_organization, 987654321)
            expect_error(client.create_organization, "")
            expect_error(client.create_configuration, org.id, "x", configuration_type_id=1)
            # 429 storm (with Retry-After), absorbed
            emu.set_faults(storm={"next": 3})
            client.get_organization(org.id)
            # rate limit reached for real (40 per 2 s)
            for _ in range(45):
                client.get_json("/organizations", {"page[size]": 1})
            # 5xx on GETs, retried
            emu.set_faults(seed=1, errors=[{"rate": 0.3, "status": 500, "methods": ["GET"]}])
            assert len(list(client.list_configurations())) == 1500
            # ambiguous POST
            emu.set_faults(drop=[{"next": 1, "methods": ["POST"]}])
            expect_error(client.create_organization, "Dropped")
            # breaker: open, fail fast, recover
            emu.set_faults(errors=[{"rate": 1.0, "status": 503}])
            expect_error(client.create_organization, "Down")  # ServerError: 503 on a POST
            expect_error(client.get_organization, org.id)  # retried until the breaker opens
            expect_error(client.get_organization, org.id)  # CircuitOpenError
            texts.append(json.dumps(client.health_check().as_dict()))
            emu.set_faults()
            wait_for(lambda: client.circuit_breaker.state == "half_open", message="cool-down")
            texts.append(json.dumps(client.health_check().as_dict()))
            texts.append(json.dumps(client.get_metrics().as_dict()))
            texts.append(json.dumps(client.rate_limiter.get_stats()))
            texts.append(json.dumps(client.circuit_breaker.get_stats()))
            texts.append(repr(client.cache.get_statistics()))
            texts += [
                repr(client),
                str(client),
                repr(vars(client)),
                repr(vars(client._transport)),
                repr(client._transport.session.__dict__),
                repr(client._transport.session.auth),
            ]
            with pytest.raises(TypeError):
                pickle.dumps(client._transport._secrets[0])
            client.close()
        # transport errors: nothing listening any more; TLS failure: no CA
        gone = ITGlueClient.from_instance(
            "canary-gone", base_url=emu.base_url, api_key=CANARY, state_dir=state, max_retries=0
        )
        expect_error(gone.get_organization, 1)
        gone.close()
        with run_emulator(api_key=CANARY) as emu2:
            notrust = ITGlueClient.from_instance(
                "canary-tls", base_url=emu2.base_url, api_key=CANARY, state_dir=state, max_retries=0
            )
            expect_error(notrust.get_organization, 1)
            notrust.close()
        # configuration errors built from the key
        for kwargs in (
            {"base_url": "http://example.com"},
            {"api_key": CANARY + "\n"},
            {"region": "mars"},
        ):
            try:
                ITGlueClient.from_instance(
                    "canary-cfg", state_dir=state, **{"api_key": CANARY, **kwargs}
                )
            except ITGlueError as e:
                errors.append(e)
        # the same through the direct constructor (no keyring, no state dir)
        for url, suffix in (("http://example.com", ""), ("https://x", "\n")):
            try:
                ITGlueClient(url, CANARY + suffix)  # no local of this frame holds the key
            except ITGlueError as e:
                errors.append(e)
        kinds = {type(e).__name__ for e in errors}
        assert {
            "AuthenticationError",
            "NotFoundError",
            "ValidationError",
            "AmbiguousOutcomeError",
            "ServerError",
            "CircuitOpenError",
            "TransportError",
            "InsecureURLError",
            "ConfigurationError",
        } <= kinds, kinds
        texts += [describe(e) for e in errors]
        assert client.get_metrics().rate_limited_429 >= 3
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
        urllib3_logger.setLevel(old_u3)

    out, err = capfd.readouterr()
    assert handler.count > 100  # the session really logged at DEBUG (urllib3 included)
    assert any("Starting new HTTPS connection" in t for t in handler.texts)
    leaks = {
        "logs": _leaks("\n".join(handler.texts)),
        "stdout": _leaks(out),
        "stderr": _leaks(err),
        "objects/exceptions/metrics": _leaks("\n".join(texts)),
    }
    files = sorted(p for p in state.rglob("*") if p.is_file())
    names = {p.name for p in files}
    assert "canary.db" in names and "canary.ratelimit" in names, names
    for p in files:
        leaks[f"file {p.name}"] = _leaks(p.read_bytes())
    assert {k: v for k, v in leaks.items() if v} == {}
