"""The ``[routing]`` table's model and the rule matcher: what a record's fields select.

Pure: nothing here talks to IT Glue (the router in :mod:`plugins.routing` does).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from core_client.attachments import ATTACHABLE
from pipeline import DocumentRecord, InstanceField, Rejected, TransformOptions

from .auto import AutoOptions

#: resource types whose names the cache can resolve (attachment targets by name)
NAMED_RESOURCES = ("configurations", "contacts")


#: record fields a rule can match on (besides ``metadata.<key>``); ``text`` is what the
#: ``extract`` transform read in the file (``metadata.extract_text``)
MATCH_FIELDS = (
    "name",
    "source",
    "source_ref",
    "organization",
    "version",
    "file_name",
    "mime_type",
    "text",
)
#: where the extract transform leaves a file's plain text
TEXT_KEY = "extract_text"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TargetOptions(_Strict):
    """Where records go: a new document (default) or attachments on an existing resource.

    ``resource_id`` and ``resource_name`` may use ``{group}`` placeholders filled from the
    named groups of the matching rule's regular expressions.
    """

    kind: Literal["document", "attachment"] = "document"
    resource_type: str | None = None
    resource_id: str | None = None
    resource_name: str | None = None
    publish: bool = False

    @field_validator("resource_type")
    @classmethod
    def _attachable(cls, value: str | None) -> str | None:
        if value is None:
            return None
        v = value.strip().lower().replace("-", "_")
        if v not in ATTACHABLE:
            raise ValueError(
                f"{value!r} cannot take attachments; use one of {', '.join(sorted(ATTACHABLE))}"
            )
        return v

    @model_validator(mode="after")
    def _complete(self) -> TargetOptions:
        if self.kind == "attachment":
            if not self.resource_type:
                raise ValueError("an attachment target needs resource_type")
            if not (self.resource_id or self.resource_name):
                raise ValueError("an attachment target needs resource_id or resource_name")
            if not self.resource_id and self.resource_type not in NAMED_RESOURCES:
                raise ValueError(
                    f"{self.resource_type} can only be found by resource_id (names are"
                    f" resolved for {', '.join(NAMED_RESOURCES)})"
                )
        return self


class RoutingRule(_Strict):
    """One ``[[routing.rules]]`` entry; the first that matches wins.

    ``match`` maps a field to a regular expression (searched, case-insensitive); every
    entry must match. Fields: ``name``, ``source``, ``source_ref``, ``organization``,
    ``file_name`` / ``mime_type`` (any of the record's files), ``text`` (the text the
    ``extract`` transform read in the file), ``metadata.<key>`` (dotted path into the
    metadata, e.g. ``metadata.from``). Named groups can be used as
    ``{group}`` in ``organization`` and in the target's resource id/name.
    """

    name: str | None = None
    source: str | None = None  # only records of this source (a shell-style pattern)
    match: dict[str, str] = Field(default_factory=dict)
    organization: str | None = None
    instance: InstanceField | None = None  # the IT Glue instance ([itglue.instances.NAME])
    target: TargetOptions | None = None
    publish: bool | None = None

    @field_validator("match")
    @classmethod
    def _regexes(cls, value: dict[str, str]) -> dict[str, str]:
        for field_name, pattern in value.items():
            if field_name not in MATCH_FIELDS and not (
                field_name.startswith("metadata.") and len(field_name) > len("metadata.")
            ):
                raise ValueError(
                    f"match.{field_name}: unknown field; use one of {', '.join(MATCH_FIELDS)}"
                    " or metadata.<key>"
                )
            try:
                re.compile(pattern, re.IGNORECASE)  # as match_rule compiles it
            except (re.error, OverflowError, RecursionError) as e:
                # re raises OverflowError for a{99999999999} and RecursionError for
                # deeply nested groups; pydantic passes neither on as a validation error
                raise ValueError(
                    f"match.{field_name}: invalid regular expression: {str(e) or type(e).__name__}"
                ) from None
        return value


class RoutingOptions(TransformOptions):
    """The ``[routing]`` table (over ``[transforms.route]``)."""

    config_table = "routing"

    fallback_organization: str | None = None
    cache_max_age: float = Field(default=3600.0, gt=0)  # seconds
    refresh_interval: float = Field(default=60.0, ge=0)  # min seconds between list calls
    target: TargetOptions = Field(default_factory=TargetOptions)  # the default target
    publish: bool | None = None  # shorthand for target.publish
    rules: list[RoutingRule] = Field(default_factory=list)
    auto: AutoOptions = Field(default_factory=AutoOptions)  # organization named in the text

    @field_validator("auto")
    @classmethod
    def _auto_patterns(cls, value: AutoOptions) -> AutoOptions:
        value.check_patterns()
        return value


# --------------------------------------------------------------------------- matching


def _values(record: DocumentRecord, field_name: str) -> list[str]:
    """The string values of ``field_name`` in ``record`` (several for per-file fields)."""
    if field_name in MATCH_FIELDS[:5]:
        value = getattr(record, field_name)
        return [] if value is None else [str(value)]
    if field_name == "text":
        text = record.metadata.get(TEXT_KEY)
        return [text] if isinstance(text, str) and text else []
    if field_name in ("file_name", "mime_type"):
        return [str(getattr(b, field_name)) for b in record.files if getattr(b, field_name)]
    if field_name.startswith("metadata."):
        node: Any = record.metadata
        for part in field_name.split(".")[1:]:
            node = node.get(part) if isinstance(node, Mapping) else None
        if node is None:
            return []
        if isinstance(node, list | tuple | set):
            return [str(v) for v in node]
        return [str(node)]
    raise Rejected(f"[routing] rule matches on unknown field {field_name!r}")


def match_rule(rule: RoutingRule, record: DocumentRecord) -> dict[str, str] | None:
    """The named groups captured when ``rule`` matches ``record``, else None."""
    import fnmatch

    if rule.source is not None and not fnmatch.fnmatchcase(record.source, rule.source):
        return None
    groups: dict[str, str] = {}
    for field_name, pattern in rule.match.items():
        regex = re.compile(pattern, re.IGNORECASE)
        for value in _values(record, field_name):
            m = regex.search(value)
            if m:
                groups.update({k: v for k, v in m.groupdict().items() if v is not None})
                break
        else:
            return None
    return groups


_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def expand(template: str, groups: Mapping[str, str]) -> str:
    """``template`` with ``{group}`` replaced (no format-string attribute access)."""

    def sub(m: re.Match[str]) -> str:
        if m.group(1) not in groups:
            raise Rejected(f"[routing] placeholder {{{m.group(1)}}} has no matching regex group")
        return groups[m.group(1)]

    return _PLACEHOLDER.sub(sub, template).strip()
