"""``run_once``: run the real engine once against the emulator and report what landed.

What landed is read back from the emulator (not from the engine's own summary), so a
test sees exactly what IT Glue would hold: the documents created during the run with
their organization, sections and attachment bytes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..runner import Engine, RunSummary
from ..settings import Settings
from .builders import with_sections

if TYPE_CHECKING:
    from itglue_emulator import Emulator


@dataclass(frozen=True)
class LandedDocument:
    """A document created in IT Glue. Compares by what a reader sees: name, organization
    name, sections (HTML, in order) and attachments (file name -> bytes)."""

    name: str
    organization: str | None
    sections: list[str] = field(default_factory=list)
    attachments: dict[str, bytes] = field(default_factory=dict)
    id: str = field(default="", compare=False, repr=False)
    organization_id: str = field(default="", compare=False, repr=False)


@dataclass(frozen=True)
class LandedAttachment:
    """A file uploaded to any IT Glue resource (a document's, or an existing resource's)."""

    resource_type: str  # "documents", "configurations", ...
    resource_id: str
    file_name: str
    content: bytes


@dataclass(frozen=True)
class Landed:
    """What one ``run_once`` did: the engine's summary, and what appeared in IT Glue."""

    summary: RunSummary
    documents: list[LandedDocument]  # created during the run, sorted by name then organization
    attachments: list[LandedAttachment]  # uploaded during the run, in upload order

    @property
    def failures(self) -> dict[str, str]:
        """``source_ref -> reason`` of every record that failed during the run."""
        return {f["source_ref"]: f["reason"] for f in self.summary.failures}

    @property
    def ok(self) -> bool:
        """Nothing failed, nothing is left pending and every source could scan."""
        return self.summary.ok


def _ids(records: Mapping[str, list[dict[str, Any]]], collection: str) -> set[str]:
    return {row["id"] for row in records.get(collection, [])}


def landed_since(
    emulator: Emulator, before: Mapping[str, list[dict[str, Any]]], summary: RunSummary
) -> Landed:
    """What the emulator holds now that it did not hold in ``before`` (an earlier
    ``emulator.state()["records"]``)."""
    records = emulator.state()["records"]
    orgs = {row["id"]: row.get("name") for row in records["organizations"]}
    old_documents, old_attachments = _ids(before, "documents"), _ids(before, "attachments")
    new_attachments = [row for row in records["attachments"] if row["id"] not in old_attachments]
    attachments = [
        LandedAttachment(
            resource_type=str(row["resource-type"]),
            resource_id=str(row["resource-id"]),
            file_name=str(row["file-name"]),
            content=emulator.attachment_content(row["id"]),
        )
        for row in new_attachments
    ]
    documents = []
    for doc in records["documents"]:
        if doc["id"] in old_documents:
            continue
        sections = sorted(
            (s for s in records["document_sections"] if str(s["document-id"]) == doc["id"]),
            key=lambda s: (s.get("sort", 0), int(s["id"])),
        )
        org_id = str(doc.get("organization-id") or "")
        documents.append(
            LandedDocument(
                name=doc["name"],
                organization=orgs.get(org_id),
                sections=[s.get("content") or "" for s in sections],
                attachments={
                    a.file_name: a.content
                    for a in attachments
                    if a.resource_type == "documents" and a.resource_id == doc["id"]
                },
                id=doc["id"],
                organization_id=org_id,
            )
        )
    documents.sort(key=lambda d: (d.name, d.organization or ""))
    return Landed(summary=summary, documents=documents, attachments=attachments)


class RunOnce:
    """The ``run_once`` fixture: ``run_once(source_table, ...)`` runs the engine once on
    ``settings`` plus the given ``[[sources]]`` tables and returns :class:`Landed`.

    Calls in one test share the state directory (the ledger), so a second call shows
    what a second run of the same configuration does.
    """

    def __init__(self, emulator: Emulator, settings: Settings) -> None:
        self.emulator = emulator
        self.settings = settings

    def __call__(
        self,
        *source_tables: Mapping[str, Any],
        organizations: Iterable[str] = (),
        transforms: Sequence[str] | None = None,
        plugins: Sequence[object] = (),
        **sections: Any,
    ) -> Landed:
        """Run once and report what landed.

        :param source_tables: ``[[sources]]`` tables; ``name`` defaults to the ``type``.
        :param organizations: organization names to create in IT Glue first (unless they
            exist), so that records naming them can be routed.
        :param transforms: ``[pipeline] transforms`` (default: mime, extract, route, title).
        :param plugins: plugin objects or modules to register besides the installed ones
            (a plugin under test that is not installed).
        :param sections: other top-level settings, e.g. ``routing={...}``,
            ``pipeline={"workers": 1}``.
        """
        tables = [{"name": t.get("type"), **t} for t in source_tables]
        if transforms is not None:
            sections["pipeline"] = {**sections.get("pipeline", {}), "transforms": transforms}
        settings = with_sections(
            self.settings, sources=[*self.settings.model_dump()["sources"], *tables], **sections
        )
        pm = None
        if plugins:
            from ..plugins import get_plugin_manager

            pm = get_plugin_manager(block=settings.plugins.get("block", ()), extra=plugins)
        with Engine(settings, pm) as engine:
            records = self.emulator.state()["records"]
            existing = {row.get("name") for row in records["organizations"]}
            for name in organizations:
                if name not in existing:
                    engine.context.itglue().create_organization(name)
                    existing.add(name)
            summary = engine.run_once()
        return landed_since(self.emulator, records, summary)
