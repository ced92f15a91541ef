"""Documents, their sections and their images."""

from __future__ import annotations

from .spec import COMMON_SORT, ORG_REF, Spec

DOCUMENT_SPECS: tuple[Spec, ...] = (
    Spec(
        "documents",
        "documents",
        "Document",
        "Document",
        writable=frozenset(
            {
                "name",
                "organization-id",
                "document-folder-id",
                "restricted",
                "public",
                "archived",
            }
        ),
        required=("name",),
        org_owned=True,
        references={"organization-id": ORG_REF},
        filters={"document-folder-id": "int"},
        sorts=COMMON_SORT | {"name"},
        includes=frozenset({"attachments", "related_items", "sections"}),
        defaults={
            "document-folder-id": None,
            "restricted": False,
            "public": False,
            "archived": False,
            "published": False,
            "published-at": None,
        },
    ),
    Spec(
        "document_sections",
        "document-sections",
        "Document::Section",
        "Document Section",
        writable=frozenset({"resource-type", "content", "level", "sort", "duration"}),
        sorts=COMMON_SORT | {"sort"},
    ),
    Spec("document_images", "document-images", "DocumentImage", "Document Image"),
)
