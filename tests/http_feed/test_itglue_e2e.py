"""A feed into the IT Glue emulator through the real engine, default transforms (mime,
route, title) and the itglue sink: documents land once with byte-identical files."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from core_client.client import ITGlueClient
from pipeline.runner import Engine
from pipeline.settings import Settings, SourceSettings
from tests.http_feed.http_feed_server import FeedServer, add_doc


def test_feed_lands_in_the_emulator_once(
    feed: FeedServer,
    source_options: Callable[..., dict[str, Any]],
    ingest_settings: Settings,
    itglue_emulator: Any,
) -> None:
    client = ITGlueClient.from_instance(
        base_url=ingest_settings.itglue.base_url,
        api_key_env=ingest_settings.itglue.api_key_env,
        ca_bundle=ingest_settings.itglue.ca_bundle,
        state_dir=ingest_settings.state.dir,
    )
    try:
        client.create_organization("Acme")
        client.create_organization("Globex")
    finally:
        client.close()
    for i in range(1, 5):
        add_doc(feed, i, org="Globex" if i == 3 else "Acme")
    ingest_settings.sources.append(SourceSettings.model_validate(source_options("next_link")))

    with Engine(ingest_settings) as engine:
        summary = engine.run_once()
    assert (summary.delivered, summary.failed, summary.pending) == (4, 0, 0), summary.failures

    records = itglue_emulator.state()["records"]
    orgs = {o["id"]: o["name"] for o in records["organizations"]}
    docs = {d["name"]: d for d in records["documents"]}
    assert sorted(docs) == [f"Report {i}" for i in range(1, 5)]
    assert orgs[str(docs["Report 3"]["organization-id"])] == "Globex"
    assert orgs[str(docs["Report 1"]["organization-id"])] == "Acme"
    contents = sorted(itglue_emulator.attachment_content(a["id"]) for a in records["attachments"])
    assert contents == sorted(feed.state.files[f"doc-{i}.pdf"][0] for i in range(1, 5))

    uploads = itglue_emulator.state()["request_total"]
    with Engine(ingest_settings) as engine:
        summary = engine.run_once()
    assert (summary.delivered, summary.duplicate, summary.failed) == (0, 0, 0)
    assert itglue_emulator.state()["request_total"] == uploads  # not one API request
    assert feed.state.downloads() == 4
