"""The seed's usage examples (docs: the seed's "Basic Usage" and "Cache Usage"), run
as written against the emulator.

Adapted, and only this: ``ITGlueClient(instance=...)`` builds the client against the
emulator (the seed's client reads its key from the keychain of a real account), and the
example's placeholder ``/path/to/file.pdf`` is a real file in the test's directory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from itglue_emulator import Emulator
from tests.client.conftest import ClientFactory


def test_the_seed_usage_example_runs_as_written(
    itglue_emulator: Emulator, make_cached_client: ClientFactory, tmp_path: Path
) -> None:
    emu = itglue_emulator
    # what the example assumes of the account: organization 1 and a "Server" type
    emu.add_records(
        {
            "organizations": [{"id": 1, "name": "Happy Frog"}],
            "configuration_types": [{"name": "Server"}, {"name": "Workstation"}],
        }
    )
    pdf = tmp_path / "file.pdf"
    pdf.write_bytes(b"%PDF-1.4 network diagram\n")

    def ITGlueClient(instance: str) -> Any:
        return make_cached_client(emu, instance=instance)

    # --- the seed, "Basic Usage" ---
    # Create client (API key auto-loaded from Keychain)
    client = ITGlueClient(instance="sandbox")

    # List organizations
    orgs = client.list_organizations()

    # Create configuration
    config = client.create_configuration(
        organization_id="1", name="Web Server", configuration_type="Server", serial_number="SN12345"
    )

    # Upload document
    doc = client.upload_document(
        organization_id="1",
        file_path=str(pdf),  # the seed: '/path/to/file.pdf'
        name="Network Diagram.pdf",
    )

    # Health check
    health = client.health_check()
    print(health)  # {'status': 'healthy', 'api_key_valid': True, ...}

    # --- the seed, "Cache Usage" ---
    # Smart query (cache-first, API fallback)
    org = client.cache.smart_get_organization("123", api_client=client)

    # Cache statistics
    stats = client.cache.get_statistics()
    print(f"Cache hit rate: {stats['cache_hit_rate']:.1%}")
    print(f"Organizations cached: {stats['organization_count']}")

    # Refresh cache
    orgs = client.list_organizations()  # Fetches from API
    client.cache.refresh_organizations(orgs)  # Updates cache
    # --- end of the seed ---

    assert config.name == "Web Server" and config.serial_number == "SN12345"
    assert config.organization_id == "1" and config.configuration_type_name == "Server"
    assert doc.name == "Network Diagram.pdf" and doc.organization_id == "1"
    assert [a.attachment_file_size for a in client.list_attachments("documents", doc.id)] == [
        pdf.stat().st_size
    ]
    assert health.status == "healthy" and health.api_key_valid is True
    assert org is None  # there is no organization 123
    assert client.cache.get_statistics()["organization_count"] == 1

    # the spelling: the organization as a record, the type by name
    happy_frog = client.get_organization("1")
    again = client.create_configuration(
        happy_frog, "Web Server", configuration_type="Server", serial_number="SN12345"
    )
    assert again.configuration_type_id == config.configuration_type_id
