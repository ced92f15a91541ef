"""Names where people think in names: ``configuration_type="Server"`` -> its id.

A resource's table line declares which arguments are names (:class:`NameRef`); the
:class:`NameResolver` turns them into ids through the metadata cache, refreshing a
kind from the API once when a name is missing (a type created a minute ago), and
raises :class:`~core_client.exceptions.UnknownNameError` with the closest names when
nothing fits. Ids (digits), models and ``None`` pass through untouched, so every
``*_id`` argument also takes a name: IT Glue ids are always digits.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from .exceptions import AmbiguousNameError, ConfigurationError, UnknownNameError
from .models import Resource

if TYPE_CHECKING:
    from .cache import MetadataCache

CLOSE_MATCHES = 5


@dataclass(frozen=True)
class NameRef:
    """Argument ``<attr without _id>`` (or ``attr`` itself) names a record of ``kind``.

    ``scope``: another id attribute the name is unique within (a contact within its
    organization, a model within its manufacturer). ``send=False``: resolved only to
    scope another name (``platform`` for ``operating_system``), never sent.
    """

    kind: str
    attr: str
    scope: str | None = None
    send: bool = True

    @property
    def argument(self) -> str:
        return self.attr.removesuffix("_id")


def names(*refs: NameRef) -> dict[str, NameRef]:
    """A resource's name arguments, keyed by their id attribute (resolved in order)."""
    return {r.attr: r for r in refs}


def is_id(value: Any) -> bool:
    return (isinstance(value, int) and not isinstance(value, bool)) or (
        isinstance(value, str) and value.strip().isdigit()
    )


class Lister(Protocol):
    """What the resolver needs from the client."""

    @property
    def cache(self) -> MetadataCache: ...

    def list_named(self, kind: str, scope: str | None, scope_id: Any) -> Iterable[Resource]: ...


class NameResolver:
    """Resolves name arguments for one client (see the module docstring)."""

    def __init__(self, client: Lister) -> None:
        self._client = client

    def _cache(self) -> MetadataCache | None:
        try:
            return self._client.cache
        except ConfigurationError:  # a client without a cache lists every time
            return None

    def resolve(self, refs: Mapping[str, NameRef], attrs: Mapping[str, Any]) -> dict[str, Any]:
        """``attrs`` with each name argument replaced by its id attribute."""
        out = dict(attrs)
        for ref in refs.values():
            if ref.argument in out and ref.argument != ref.attr:
                if out.get(ref.attr) is not None:
                    raise ValueError(f"give {ref.argument} or {ref.attr}, not both")
                out[ref.attr] = out.pop(ref.argument)
            value = out.get(ref.attr)
            if value is None:
                continue
            scope_id = out.get(ref.scope) if ref.scope else None
            out[ref.attr] = self.id_for(ref.kind, value, ref.scope, scope_id)
        for ref in refs.values():
            if not ref.send:
                out.pop(ref.attr, None)
        return out

    def id_for(self, kind: str, value: Any, scope: str | None = None, scope_id: Any = None) -> Any:
        """The id of ``value``: an id or a model as is, a name looked up (one refresh)."""
        if isinstance(value, Resource):
            return value.id
        if is_id(value) or not isinstance(value, str):
            return value
        if scope_id is not None and not is_id(scope_id):
            scope_id = None  # an unresolved scope cannot narrow the search
        cache = self._cache()
        found = self._find(cache, kind, value, scope, scope_id, refresh=False)
        if not found:
            found = self._find(cache, kind, value, scope, scope_id, refresh=True)
        if not found:
            candidates = self._names(cache, kind, scope, scope_id)
            raise UnknownNameError(kind, value, close_matches(value, candidates))
        exact = [r for r in found if r.attr("name") == value] or found
        if len(exact) > 1:
            raise AmbiguousNameError(kind, value, [r.id for r in exact])
        return exact[0].id

    def _find(
        self,
        cache: MetadataCache | None,
        kind: str,
        name: str,
        scope: str | None,
        scope_id: Any,
        *,
        refresh: bool,
    ) -> list[Resource]:
        if cache is None:
            if not refresh:
                return []
            listed = self._client.list_named(kind, scope, scope_id)
            key = _key(name)
            return [r for r in listed if _key(_name_of(r)) == key]
        if refresh:
            # one organization's records, else the whole kind: a partial listing must
            # not replace the cached rest (models of other manufacturers)
            if scope_id is not None and scope == "organization_id":
                items = self._client.list_named(kind, scope, scope_id)
                cache.refresh(kind, items, organization_id=scope_id)
            else:
                cache.refresh(kind, self._client.list_named(kind, None, None))
        found: list[Resource] = cache.find_by_name(kind, name, scope_id)
        return found

    def _names(
        self, cache: MetadataCache | None, kind: str, scope: str | None, scope_id: Any
    ) -> list[str]:
        if cache is not None:
            return cache.names(kind, scope_id)
        return sorted({_name_of(r) for r in self._client.list_named(kind, scope, scope_id)})


def _key(name: str) -> str:
    from .cache.records import name_key

    return name_key(name)


def _name_of(record: Resource) -> str:
    name = record.attr("name")
    if name:
        return str(name)
    parts = (record.attr("first_name"), record.attr("last_name"))
    return " ".join(str(p) for p in parts if p)


def close_matches(name: str, candidates: Iterable[str]) -> list[str]:
    """The candidates most like ``name`` (case-insensitive), best first."""
    by_key: dict[str, str] = {}
    for c in candidates:
        by_key.setdefault(_key(c), c)
    keys = difflib.get_close_matches(_key(name), list(by_key), n=CLOSE_MATCHES, cutoff=0.6)
    return [by_key[k] for k in keys]


__all__ = ["NameRef", "NameResolver", "close_matches", "is_id", "names"]
