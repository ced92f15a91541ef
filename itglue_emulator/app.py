"""The emulator's request pipeline, independent of sockets (the server feeds it).

Order for an API request: latency fault -> public route? -> x-api-key (401) -> rate
limit (429) -> 429 storm -> 5xx fault -> route (404) -> handler -> commit-then-drop.
The body size limit (413) is enforced by the server before the body is read.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from . import errors
from .faults import FaultConfigError, Faults
from .jsonapi import Ctx, Reply
from .ratelimit import SlidingWindowLimiter, retry_after_header
from .routes import build_router
from .seed import generate
from .store import Store, now_iso


class HeaderLookup(Protocol):
    def get(self, name: str, /) -> str | None: ...


log = logging.getLogger("itglue_emulator")
DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024
UNMATCHED = "<unmatched>"
JSON = "application/json"


@dataclass
class Outcome:
    reply: Reply
    template: str
    drop: bool = False
    cut: bool = False  # send half the body, then close


def _error_reply(err: errors.ApiError) -> Reply:
    return Reply(err.status, err.body(), dict(err.headers))


class EmulatorApp:
    def __init__(
        self,
        api_key: str,
        rate_limit: tuple[int, float] = (3000, 300.0),
        retry_after: bool = False,
        max_body_bytes: int | None = None,
        faults: Mapping[str, Any] | None = None,
        random_seed: int | None = None,
    ) -> None:
        if not api_key:
            raise ValueError("the emulator needs an API key")
        self._api_key = api_key.encode()
        self._key_id = hashlib.sha256(self._api_key).hexdigest()[:12]
        self.store = Store()
        self.router = build_router()
        self.limiter = SlidingWindowLimiter(int(rate_limit[0]), float(rate_limit[1]))
        self.retry_after = retry_after
        self.max_body_bytes = max_body_bytes or DEFAULT_MAX_BODY_BYTES
        self.faults = Faults(random_seed)
        if faults:
            self.faults.configure(dict(faults))
        self.base_url = ""
        self._counts: Counter[tuple[str, str, int, bool]] = Counter()
        self._count_lock = threading.Lock()
        self.connections = 0  # accepted TCP connections (keep-alive shows up here)

    def set_api_key(self, api_key: str) -> None:
        """The account's key was regenerated: from now on only ``api_key`` is accepted
        (the rate budget stays the account's)."""
        if not api_key:
            raise ValueError("the emulator needs an API key")
        self._api_key = api_key.encode()

    def __repr__(self) -> str:  # never show the key
        return f"EmulatorApp(base_url={self.base_url!r})"

    # -- bookkeeping ------------------------------------------------------------------

    def template_for(self, method: str, path: str) -> str:
        found = self.router.match(method, path)
        return found[0].template if found else UNMATCHED

    def count(self, method: str, template: str, status: int, dropped: bool = False) -> None:
        with self._count_lock:
            self._counts[(method, template, status, dropped)] += 1

    def note_connection(self) -> None:
        with self._count_lock:
            self.connections += 1

    def reset(self) -> None:
        self.store.reset()
        self.limiter.reset()
        self.faults.configure({})
        with self._count_lock:
            self._counts.clear()
            self.connections = 0

    # -- API requests -----------------------------------------------------------------

    def process(
        self,
        method: str,
        path: str,
        query: list[tuple[str, str]],
        headers: HeaderLookup,
        body: bytes,
    ) -> Outcome:
        found = self.router.match(method, path)
        template = found[0].template if found else UNMATCHED
        outcome = self._process(method, path, query, headers, body, found, template)
        self.count(method, template, outcome.reply.status, outcome.drop)
        return outcome

    def _process(
        self,
        method: str,
        path: str,
        query: list[tuple[str, str]],
        headers: HeaderLookup,
        body: bytes,
        found: Any,
        template: str,
    ) -> Outcome:
        delay = self.faults.latency(method, path)
        if delay:
            time.sleep(delay)
        public = bool(found and found[0].public)
        try:
            if not public:
                given = (headers.get("x-api-key") or "").encode()
                if not hmac.compare_digest(given, self._api_key):
                    raise errors.unauthorized()
                wait = self.limiter.acquire(self._key_id)
                if wait is not None:
                    raise errors.too_many_requests(
                        retry_after_header(wait) if self.retry_after else None
                    )
                storm = self.faults.storm()
                if storm is not None:
                    raise errors.too_many_requests(
                        retry_after_header(storm) if self.retry_after else None
                    )
            status = self.faults.error_status(method, path)
            if status is not None:
                raise errors.injected_server_error(status)
            if found is None:
                raise errors.route_not_found(method, path)
            route, params = found
            ctx = Ctx(self, method, path, query, body, params, headers.get("Content-Type") or "")
            reply = route.handler(ctx)
        except errors.ApiError as err:
            return Outcome(_error_reply(err), template)
        except Exception:  # an emulator bug or an input it did not foresee: answer like Rails
            log.exception("emulator: unhandled error on %s %s", method, path)
            return Outcome(_error_reply(errors.internal_error()), template)
        drop = (
            method in ("POST", "PATCH", "DELETE")
            and reply.status < 400
            and (self.faults.drop(method, path))
        )
        cut = 200 <= reply.status < 300 and self.faults.cut(method, path)
        return Outcome(reply, template, drop, cut)

    # -- /_emulator inspection --------------------------------------------------------

    def inspect(self, method: str, path: str, body: bytes) -> Reply:
        parts = [p for p in path.split("/") if p][1:]
        try:
            if method == "GET" and parts == ["state"]:
                return Reply(200, self.state(), content_type=JSON)
            if (
                method == "GET"
                and len(parts) == 3
                and parts[0] == "attachments"
                and (parts[2] == "content")
            ):
                with self.store.lock:
                    data = self.store.blobs.get(int(parts[1])) if parts[1].isdigit() else None
                if data is None:
                    return Reply(404, {"error": "no such attachment"}, content_type=JSON)
                return Reply(200, data, content_type="application/octet-stream")
            if (
                method == "PUT"
                and len(parts) == 3
                and parts[0] == "attachments"
                and parts[2] == "content"
            ):
                return self._replace_attachment(parts[1], body)
            if method == "GET" and parts == ["faults"]:
                return Reply(200, {"faults": self.faults.describe()}, content_type=JSON)
            if method == "POST" and parts == ["faults"]:
                self.faults.configure(_json(body))
                return Reply(200, {"faults": self.faults.describe()}, content_type=JSON)
            if method == "POST" and parts == ["seed"]:
                doc = _json(body)
                if not isinstance(doc, dict):
                    raise ValueError("seed takes an object of counts per collection")
                created = generate(self.store, doc)
                return Reply(200, {"created": created}, content_type=JSON)
            if method == "POST" and parts == ["records"]:
                return Reply(200, {"created": self._put_records(_json(body))}, content_type=JSON)
            if method == "POST" and parts == ["reset"]:
                self.reset()
                return Reply(200, {"reset": True}, content_type=JSON)
        except (FaultConfigError, ValueError, TypeError) as e:
            return Reply(400, {"error": str(e)}, content_type=JSON)
        return Reply(404, {"error": f"no inspection route {method} {path}"}, content_type=JSON)

    def _replace_attachment(self, attachment_id: str, data: bytes) -> Reply:
        """New bytes for an attachment (someone changed the file in IT Glue): its size,
        digest and ``updated-at`` follow."""
        with self.store.lock:
            record = (
                self.store.get("attachments", int(attachment_id))
                if attachment_id.isdigit()
                else None
            )
            if record is None:
                return Reply(404, {"error": "no such attachment"}, content_type=JSON)
            self.store.blobs[record["id"]] = data
            record["attachment-file-size"] = len(data)
            record["sha256"] = hashlib.sha256(data).hexdigest()
            record["updated-at"] = now_iso()
        return Reply(200, {"size": len(data)}, content_type=JSON)

    def _put_records(self, doc: Any) -> dict[str, list[str]]:
        """``{collection: [record, ...]}`` stored as given (kebab-case keys, ids kept)."""
        if not isinstance(doc, dict) or not all(
            c in self.store.tables and isinstance(rows, list) for c, rows in doc.items()
        ):
            raise ValueError("records takes {collection: [record, ...]} of known collections")
        created: dict[str, list[str]] = {}
        for collection, rows in doc.items():
            if not all(isinstance(r, dict) for r in rows):
                raise ValueError(f"{collection}: every record must be an object")
            created[collection] = [str(self.store.put(collection, r)["id"]) for r in rows]
        return created

    def state(self) -> dict[str, Any]:
        """Every stored record (attachments without their bytes) plus request counts."""
        records: dict[str, list[dict[str, Any]]] = {}
        with self.store.lock:
            for collection, table in self.store.tables.items():
                rows = []
                for record in sorted(table.values(), key=lambda r: r["id"]):
                    row = {"id": str(record["id"])}
                    for k, v in record.items():
                        if k == "id" or k == "_token":
                            continue
                        row[k.lstrip("_")] = v
                    if collection == "attachments":
                        row["size"] = record["attachment-file-size"]
                    rows.append(row)
                records[collection] = rows
        with self._count_lock:
            counts = sorted(self._counts.items())
        requests = [
            {"method": m, "route": t, "status": s, "dropped": d, "count": n}
            for (m, t, s, d), n in counts
        ]
        return {
            "records": records,
            "requests": requests,
            "request_total": sum(r["count"] for r in requests),
            "connections": self.connections,
            "faults": self.faults.describe(),
        }


def _json(body: bytes) -> Any:
    if not body.strip():
        return {}
    return json.loads(body)
