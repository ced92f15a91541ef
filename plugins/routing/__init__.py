"""Routing: which IT Glue organization (and which resource in it) a record lands in.

Two parts, as in the plugin contract (docs/plugins.md):

* the ``route`` transform, which asks ``ingest_route`` (firstresult) and writes the
  answer into the record (``organization``, ``organization_id``, ``target``);
* the built-in router, one per engine: the ``route`` transform registers it with the
  engine (``context.add_plugin``); its ``ingest_route`` implementation is ``trylast`` so
  that any plugin's router answers first. It reads the ``[routing]`` table (the
  transform's options model declares it as its ``config_table``).

The built-in router picks an organization *name* in this order: the first ``[[routing.rules]]``
entry that matches the record and names an organization (rules may replace what the
source said; ``match = { text = '...' }`` reads the file's extracted text); the source's own
``organization`` (fixed per source, or derived by the source from a sub-folder, a sender, a
feed field); with ``[routing.auto]`` enabled, the organization the extracted text names
(:mod:`plugins.routing.auto`); ``fallback_organization``. The answer says which of these
decided (``Route.reason``); the transform keeps it in ``metadata.routing.reason`` for
``itglue-ingest status --records``. The name is then
resolved to an id through the metadata cache, case-insensitively, never with one API
call per record: the organization list is fetched again only when the cache is older
than ``cache_max_age`` or a name is missing from it, and at most once per
``refresh_interval`` seconds however many workers miss at once (a lock and a timestamp
shared by every worker of the engine). A name IT Glue does not know fails the record
with the closest known names, or goes to ``fallback_organization``.

Attachment targets (``kind = "attachment"``) name a resource by id or by name; names of
configurations and contacts are resolved through the cache the same way (one listing of
the organization's resources per ``refresh_interval``).

With several IT Glue instances (``[itglue.instances.NAME]``) the instance is chosen
first: the matching rule's ``instance``, else the source's, else ``default_instance``;
names are then resolved in that instance's cache, and the record carries its name.
"""

from __future__ import annotations

import contextlib
import difflib
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from core_client import exceptions as itg
from pipeline import (
    AccessRefused,
    DocumentRecord,
    EngineContext,
    PermanentError,
    Rejected,
    Route,
    Target,
    Transform,
    TransientError,
    hookimpl,
)

from .auto import Pick, pick_organization
from .rules import (
    MATCH_FIELDS,
    NAMED_RESOURCES,
    TEXT_KEY,
    RoutingOptions,
    RoutingRule,
    TargetOptions,
    expand,
    match_rule,
)

# the rule model and matcher live in .rules; their names stay importable from here
__all__ = [
    "MATCH_FIELDS",
    "NAMED_RESOURCES",
    "RouteTransform",
    "Router",
    "RoutingOptions",
    "RoutingRule",
    "TargetOptions",
    "closest",
    "expand",
    "ingest_register_transforms",
    "match_rule",
]

log = logging.getLogger("itglue_ingest.routing")
# the metadata keys the mime and extract transforms write (see RouteTransform.routes_alone)
WRITTEN_AHEAD = frozenset({TEXT_KEY, "extract", "transform_outcomes"})


def _get(obj: Any, key: str) -> Any:
    """An attribute of a model or a key of a dict (the cache returns models)."""
    if isinstance(obj, Mapping):
        return obj.get(key)
    return getattr(obj, key, None)


def closest(name: str, known: Iterable[str], n: int = 3) -> list[str]:
    names = sorted(set(known))
    lowered = {k.casefold(): k for k in names}
    hits = difflib.get_close_matches(name.casefold(), list(lowered), n=n, cutoff=0.5)
    return [lowered[h] for h in hits] or names[:n]


def _api_error(
    e: itg.ITGlueError, what: str, instance: str | None = None
) -> PermanentError | TransientError:
    """A client error met while listing ``what`` (of ``instance``), as the pipeline's error."""
    if isinstance(e, itg.AuthenticationError):
        return AccessRefused(
            f"IT Glue refused the API key while listing {what} ({e}); check the key"
            " (itglue-ingest auth ...) and the region -- records wait until it works",
            retry_after=300.0,
            instance=instance,
        )
    if e.transient:  # the client logs the outage (or 429 storm) itself
        return TransientError(
            f"could not list {what} from IT Glue: {e}",
            retry_after=getattr(e, "retry_after", None),
            reported=True,
        )
    if isinstance(e, itg.ConfigurationError):  # no key, an insecure URL
        return PermanentError(f"IT Glue client not usable: {e}")
    return TransientError(f"could not list {what} from IT Glue: {e}")


def _copy(e: PermanentError | TransientError) -> PermanentError | TransientError:
    """A fresh exception like ``e`` (one object must not be raised in several threads)."""
    if isinstance(e, AccessRefused):
        return AccessRefused(
            e.reason, retry_after=e.retry_after, reported=e.reported, instance=e.instance
        )
    if isinstance(e, TransientError):
        return type(e)(e.reason, retry_after=e.retry_after, reported=e.reported)
    return type(e)(e.reason)


# --------------------------------------------------------------------------- the router


ORG_MEMO = 2.0  # seconds an organization found by name is answered again without a lookup


class Router:
    """The built-in router of one engine (shared by its workers): a plugin object the
    ``route`` transform registers with its engine. Its lock and refresh clock are what
    make "at most one listing per interval" hold across the engine's workers."""

    def __init__(self, options: RoutingOptions, context: EngineContext) -> None:
        self.options = options
        self.context = context
        self._lock = threading.Lock()
        self._last_refresh: dict[str, float] = {}  # cache key -> monotonic time of refresh
        self._last_error: dict[str, tuple[float, PermanentError | TransientError]] = {}
        self._known: dict[str, list[str]] = {}  # cache key -> names seen at that refresh
        self.refreshes = 0  # how many listings this router fetched (tests, metrics)
        # (instance, name) -> (monotonic time, organization): a backlog asks the same
        # few names thousands of times a second; two database reads each were most of
        # what routing a re-dropped file cost. Only found names, for ORG_MEMO seconds.
        self._orgs: dict[tuple[str | None, str], tuple[float, Any]] = {}

    # -- cache refresh -----------------------------------------------------------------

    def _cache(self, instance: str | None = None) -> Any:
        """The instance's metadata cache; a client that cannot even be built (no key, an
        insecure URL) fails the record with the reason instead of a bare client exception."""
        try:
            return self.context.metadata_cache(instance)
        except itg.ConfigurationError as e:
            raise _api_error(e, _of("organizations", instance), instance) from e

    def _refresh(
        self, key: str, asked_at: float, fetch: Callable[[], int], instance: str | None = None
    ) -> bool:
        """Run ``fetch`` (list + cache) unless ``key`` was refreshed recently.

        Returns True when the cache changed since ``asked_at`` (look up again), False when
        a refresh is not due yet. While the last attempt failed (within the interval) every
        caller gets that failure again instead of a request of its own: an outage must not
        turn into a request storm, and a name that could not be checked is not "unknown".
        """
        with self._lock:
            last_ok = self._last_refresh.get(key)
            failed = self._last_error.get(key)
            if last_ok is not None and last_ok >= asked_at:
                return True  # another worker refreshed while this one waited
            now = time.monotonic()
            if failed is not None and (
                failed[0] >= asked_at or now - failed[0] < self.options.refresh_interval
            ):
                raise _copy(failed[1])
            if last_ok is not None and now - last_ok < self.options.refresh_interval:
                return False
            try:
                fetch()
            except (PermanentError, TransientError) as e:
                self._last_error[key] = (time.monotonic(), e)
                raise
            except itg.ITGlueError as e:
                mapped = _api_error(e, key, instance)
                self._last_error[key] = (time.monotonic(), mapped)
                raise mapped from e
            self._last_refresh[key] = time.monotonic()
            self._last_error.pop(key, None)
            self.refreshes += 1
            return True

    def _fetch_organizations(self, instance: str | None = None) -> Callable[[], int]:
        def fetch() -> int:
            orgs = list(self.context.itglue(instance).list_organizations())
            self.context.metadata_cache(instance).refresh_organizations(orgs)
            self._known[_of("organizations", instance)] = [str(_get(o, "name")) for o in orgs]
            self._orgs.clear()  # renamed or gone: the cache's answer from now on
            return len(orgs)

        return fetch

    def organization(self, name: str, instance: str | None = None) -> Any:
        """The organization called ``name`` in ``instance`` (cache first; refreshed when
        stale or missing)."""
        asked_at = time.monotonic()
        memo = (instance, name.casefold())
        known = self._orgs.get(memo)
        # never longer than the cache may be stale: a stale one is refreshed first
        if known is not None and asked_at - known[0] < min(ORG_MEMO, self.options.cache_max_age):
            return known[1]
        org = self._organization(name, instance, asked_at)
        if org is not None:
            if len(self._orgs) > 10_000:  # names come from folders and mails: bounded
                self._orgs.clear()
            self._orgs[memo] = (asked_at, org)
        return org

    def _organization(self, name: str, instance: str | None, asked_at: float) -> Any:
        cache = self._cache(instance)
        key, fetch = _of("organizations", instance), self._fetch_organizations(instance)
        stale_error: TransientError | None = None
        if cache.is_stale("organizations", self.options.cache_max_age):
            try:
                self._refresh(key, asked_at, fetch, instance)
            except TransientError as e:
                stale_error = e  # serve the stale cache if it knows the name
        org = cache.find_organization_by_name(name)
        if org is not None:
            return org
        if stale_error is not None:
            raise stale_error
        if self._refresh(key, asked_at, fetch, instance):
            return cache.find_organization_by_name(name)
        return None

    def _fetch_resources(
        self, resource_type: str, organization_id: str, instance: str | None
    ) -> Callable[[], int]:
        def fetch() -> int:
            client = self.context.itglue(instance)
            lister = getattr(client, f"list_{resource_type}")
            items = list(lister(organization_id=organization_id))
            refresh = getattr(self.context.metadata_cache(instance), f"refresh_{resource_type}")
            refresh(items, organization_id=organization_id)
            self._known[_of(f"{resource_type}@{organization_id}", instance)] = [
                str(_get(i, "name") or "") for i in items
            ]
            return len(items)

        return fetch

    def resource(
        self, resource_type: str, name: str, organization_id: str, instance: str | None = None
    ) -> Any:
        cache = self._cache(instance)
        finder = {
            "configurations": cache.find_configuration_by_name,
            "contacts": cache.find_contact_by_name,
        }[resource_type]
        asked_at = time.monotonic()
        found = finder(name, organization_id)
        if found is None and "@" in name and resource_type == "contacts":
            found = cache.find_contact_by_email(name, organization_id)
        if found is not None:
            return found
        key = _of(f"{resource_type}@{organization_id}", instance)
        fetch = self._fetch_resources(resource_type, organization_id, instance)
        if self._refresh(key, asked_at, fetch, instance):
            found = finder(name, organization_id)
            if found is None and "@" in name and resource_type == "contacts":
                found = cache.find_contact_by_email(name, organization_id)
        return found

    # -- deciding ----------------------------------------------------------------------

    @hookimpl(trylast=True)
    def ingest_route(self, record: DocumentRecord, context: EngineContext) -> Route | None:
        """Route the records of this router's engine (the plugin manager may serve several)."""
        if context is not self.context:
            return None
        return self.route(record)

    def route(self, record: DocumentRecord) -> Route:
        rule: RoutingRule | None = None
        groups: dict[str, str] = {}
        number = 0
        for number, candidate in enumerate(self.options.rules, start=1):  # noqa: B007
            found = match_rule(candidate, record)
            if found is not None:
                rule, groups = candidate, found
                break

        # the instance first: organization names are resolved in its cache
        chosen = (rule.instance if rule is not None else None) or record.instance
        instance = self.context.instance_of(chosen)
        wanted: str | None = None
        reason = ""
        if rule is not None and rule.organization:
            wanted = expand(rule.organization, groups)
            reason = _rule_reason(number, rule)
        if not wanted and record.organization:
            wanted, reason = record.organization, "the source's organization"
        if not wanted and record.organization_id:
            return Route(
                organization_id=record.organization_id,
                target=self._target(rule, groups, record.organization_id, instance),
                reason=_in("the source's organization id", instance),
                instance=instance,
            )
        if not wanted and self.options.auto.enabled:
            pick = self.auto_pick(record, instance)
            if pick is not None:
                wanted, reason = pick.organization, pick.reason
        if not wanted and self.options.fallback_organization:
            wanted = self.options.fallback_organization
            reason = "fallback_organization (no rule, source or text named one)"
        if rule is not None and not (rule.organization and reason.startswith("rule")):
            reason += f"; target from {_rule_reason(number, rule)}"
        if not wanted:
            raise Rejected(
                f"no organization for this record: source {record.source!r} sets none and no"
                " [routing] rule matched; set organization on the source, add a"
                " [[routing.rules]] entry, or set [routing] fallback_organization"
            )
        org = self.organization(wanted, instance)
        fallback = self.options.fallback_organization
        if org is None and fallback and fallback.casefold() != wanted.casefold():
            org = self.organization(fallback, instance)
            if org is not None:
                reason = (
                    f"fallback_organization ({wanted!r} is not in IT Glue; it came from {reason})"
                )
                log.warning(
                    "unknown organization %r: record goes to the fallback %r",
                    wanted,
                    fallback,
                    extra={"source": record.source, "source_ref": record.source_ref},
                )
        if org is None:
            reason = self._unknown(wanted, instance)
            if fallback and fallback.casefold() != wanted.casefold():
                reason = (
                    f"unknown organization {wanted!r}, and [routing] fallback_organization"
                    f" {fallback!r} is not in IT Glue either: " + reason
                )
            raise Rejected(reason)
        org_id = str(_get(org, "id"))
        return Route(
            organization_id=org_id,
            organization_name=str(_get(org, "name") or wanted),
            target=self._target(rule, groups, org_id, instance),
            reason=_in(reason, instance),
            instance=instance,
        )

    def auto_pick(self, record: DocumentRecord, instance: str | None = None) -> Pick | None:
        """The organization the record's extracted text names (``[routing.auto]``),
        among ``instance``'s."""
        text = record.metadata.get(TEXT_KEY)
        if not isinstance(text, str) or not text.strip():
            return None
        cache = self._cache(instance)
        if cache.is_stale("organizations", self.options.cache_max_age):
            with contextlib.suppress(TransientError):  # a stale list still names them
                key, fetch = _of("organizations", instance), self._fetch_organizations(instance)
                self._refresh(key, time.monotonic(), fetch, instance)
        orgs = [cache.get("organizations", i) for i in cache.ids("organizations")]
        names = [str(_get(o, "name")) for o in orgs if o is not None and _get(o, "name")]
        primary = [str(_get(o, "name")) for o in orgs if o is not None and _get(o, "primary")]
        return pick_organization(text, names, self.options.auto, primary)

    def _unknown(self, wanted: str, instance: str | None = None) -> str:
        known = self._known.get(_of("organizations", instance), [])
        hint = f"; known: {', '.join(closest(wanted, known))}" if known else ""
        more = f" (of {len(known)})" if len(known) > 3 else ""
        where = f"IT Glue instance {instance!r}" if instance else "IT Glue"
        return (
            f"unknown organization {wanted!r} (not in {where}{hint}{more}); set [routing]"
            " fallback_organization or fix the source's organization"
        )

    def _target(
        self,
        rule: RoutingRule | None,
        groups: Mapping[str, str],
        org_id: str,
        instance: str | None = None,
    ) -> Target:
        opts = (rule.target if rule and rule.target else None) or self.options.target
        publish = opts.publish
        if self.options.publish is not None and not (rule and rule.target):
            publish = self.options.publish
        if rule is not None and rule.publish is not None:
            publish = rule.publish
        if opts.kind == "document":
            return Target(kind="document", publish=publish)
        assert opts.resource_type is not None
        if opts.resource_id:
            resource_id = expand(opts.resource_id, groups)
            return Target(
                kind="attachment",
                resource_type=opts.resource_type,
                resource_id=resource_id,
                publish=False,
            )
        assert opts.resource_name is not None
        name = expand(opts.resource_name, groups)
        found = self.resource(opts.resource_type, name, org_id, instance)
        if found is None:
            known = self._known.get(_of(f"{opts.resource_type}@{org_id}", instance), [])
            hint = f"; known: {', '.join(closest(name, known))}" if known else ""
            raise Rejected(
                f"no {opts.resource_type[:-1]} named {name!r} in organization {org_id}{hint};"
                " fix the [routing] target's resource_name or create it in IT Glue"
            )
        return Target(
            kind="attachment",
            resource_type=opts.resource_type,
            resource_id=str(_get(found, "id")),
            resource_name=name,
            publish=False,
        )


def _of(key: str, instance: str | None) -> str:
    """A refresh/known-names key of ``instance`` (each instance has its own names)."""
    return key if instance is None else f"{key} of instance {instance}"


def _in(reason: str, instance: str | None) -> str:
    """The routing reason, saying which instance (with several)."""
    return reason if instance is None else f"{reason}; instance {instance}"


def _rule_reason(number: int, rule: RoutingRule) -> str:
    label = f" ({rule.name})" if rule.name else ""
    matched = ", ".join(f"{field}~'{pattern}'" for field, pattern in rule.match.items())
    source = f"source={rule.source!r}" if rule.source else ""
    what = ", ".join(p for p in (source, matched) if p) or "matches every record"
    return f"rule {number}{label}: {what}"


class RouteTransform(Transform):
    """Ask the routers (``ingest_route``) and write their answer into the record."""

    options_model = RoutingOptions

    def __init__(self, name: str, options: Any, context: EngineContext) -> None:
        super().__init__(name, options, context)
        opts = (
            options
            if isinstance(options, RoutingOptions)
            else RoutingOptions.model_validate(options or {})
        )
        self.router = Router(opts, context)
        context.add_plugin(self.router)

    def routes_alone(self, before: Sequence[str]) -> bool:
        """True when only built-in routers answer, with no ``[routing.auto]`` and no rule
        reading what ``mime`` and ``extract`` (the only transforms allowed ahead) change:
        the text, the files' names and types, the metadata they write."""
        opts = self.router.options
        if not set(before) <= {"mime", "extract"} or opts.auto.enabled:
            return False
        if not all(isinstance(p, Router) for p in self.context.routers()):
            return False
        for rule in opts.rules:
            for field_name in rule.match:
                top = field_name.split(".")[1] if field_name.startswith("metadata.") else ""
                if field_name in ("text", "file_name", "mime_type") or top in WRITTEN_AHEAD:
                    return False
        return True

    def apply(self, record: DocumentRecord) -> DocumentRecord:
        route = self.context.route(record)
        if route is None:
            raise Rejected("no router decided where this record goes")
        metadata = dict(record.metadata)
        routing = dict(metadata.get("routing") or {})
        if (
            record.organization
            and route.organization_name
            and (record.organization.casefold() != route.organization_name.casefold())
        ):
            routing.setdefault("requested_organization", record.organization)
        if route.reason:
            routing["reason"] = route.reason
        if routing:
            metadata["routing"] = routing
        return record.model_copy(
            update={
                "organization": route.organization_name or record.organization,
                "organization_id": route.organization_id,
                "target": route.target,
                "metadata": metadata,
                # a plugin's router may not know instances: the record's, then the default
                "instance": self.context.instance_of(route.instance or record.instance),
            }
        )


@hookimpl
def ingest_register_transforms(register: Callable[[str, type[Transform]], None]) -> None:
    register("route", RouteTransform)
