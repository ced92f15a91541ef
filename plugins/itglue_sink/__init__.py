"""The ``itglue`` sink: land a routed record in IT Glue, resumably and exactly once.

One request per step (the document, each section, each attachment, the publish flag),
each journaled in the ledger right after it succeeded, so a redelivery after a crash
skips what is done. A create whose answer was lost is reconciled (what exists is listed
and matched) before anything is created again: a second create would duplicate the
document. Section HTML is sanitized with the one nh3 allowlist
(``pipeline.sanitize_html``), because mail bodies, feed texts and files are untrusted.
401/403 retry later, loudly: a rotated key should pause delivery, not fail every record
it touches.

The steps, the reconciliation rules, what a document costs in requests and how client
errors map onto the pipeline's: docs/internals.md, "The IT Glue sink".
"""

from __future__ import annotations

from collections.abc import Callable

from pipeline import Sink, hookimpl

from .sink import ItglueSink, ItglueSinkOptions

__all__ = ["ItglueSink", "ItglueSinkOptions"]


@hookimpl
def ingest_register_sinks(register: Callable[[str, type[Sink]], None]) -> None:
    register("itglue", ItglueSink)
