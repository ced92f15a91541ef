"""Records spooled by another collector: their files are in that collector's spool.

Spools are local to each collector; the ledger and the step journal are shared. When a
collector takes a source over, the unfinished records the previous owner had spooled
name files this machine does not have: the bytes are read again from the source itself
(still there: post-actions happen only after delivery), when its scan emits the record
again (:meth:`~pipeline.runner.source_context.EngineSourceContext.emit`). Until then a
worker leaves such a record waiting.
"""

from __future__ import annotations

from ..records import Blob, DocumentRecord
from ..spool import Spool


def foreign_files(record: DocumentRecord, spool: Spool) -> list[Blob]:
    """The files of ``record`` that are not in ``spool`` where ``record`` says."""
    return [b for b in record.files if b.path != spool.path_for(b.sha256) or not b.path.exists()]


def rehomed(record: DocumentRecord, spool: Spool) -> DocumentRecord | None:
    """``record`` naming this spool's files, when this spool has every one of them
    (by content); None when some content is not here."""
    if not all(spool.holds(b.sha256) for b in record.files):
        return None
    files = [b.model_copy(update={"path": spool.path_for(b.sha256)}) for b in record.files]
    return record.model_copy(update={"files": files})
