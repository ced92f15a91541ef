"""The engine: sources -> spool + ledger -> transforms -> dedupe -> sink -> ack.

Sources run in their own threads and emit drafts through their
:class:`~pipeline.runner.source_context.EngineSourceContext`: the bytes go to the spool
and the record to the ledger as ``received`` before ``emit`` returns (blocking while the
spool is full: :mod:`~pipeline.runner.backpressure`). A dispatcher hands due ledger rows
to a small worker pool (:mod:`~pipeline.runner.workers`); a worker moves one record
through the state machine of :mod:`~pipeline.runner.record_flow`, committing each state
before the next step. Because every step is durable, restarting after a crash (even
SIGKILL) resumes each record where it was. :mod:`~pipeline.runner.assembly` turns a
configuration into these parts; :mod:`~pipeline.runner.scheduler` runs them (``once``,
or the daemon). Transforms and the sink are shared by all workers: they must be
thread-safe.
"""

from .assembly import PluginConflictError, plugin_manager_for
from .engine import SOURCE_CLOSE_TIMEOUT, Engine
from .outcomes import Progress, RunSummary
from .record_flow import ENGINE_ERROR_LIMIT, classify, target_key
from .source_context import EngineSourceContext

__all__ = [
    "ENGINE_ERROR_LIMIT",
    "SOURCE_CLOSE_TIMEOUT",
    "Engine",
    "EngineSourceContext",
    "PluginConflictError",
    "Progress",
    "RunSummary",
    "classify",
    "plugin_manager_for",
    "target_key",
]
