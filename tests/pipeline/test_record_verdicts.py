"""What an exception from a transform or the sink means for the record: one rule,
:func:`pipeline.runner.classify`, for both (pure logic, in-process)."""

from __future__ import annotations

import errno
import sqlite3

import pytest

from core_client import exceptions as itg
from pipeline import PermanentError, Rejected, TransientError
from pipeline.runner import classify
from pipeline.spool import SpoolWriteError


def test_the_pipelines_own_errors_say_it_themselves() -> None:
    v = classify(TransientError("busy", retry_after=7.0), "sink itglue")
    assert (v.transient, v.reason, v.retry_after, v.unexpected) == (True, "busy", 7.0, False)
    v = classify(Rejected("not a PDF"), "transform mime")
    assert (v.transient, v.reason, v.unexpected) == (False, "not a PDF", False)
    assert classify(PermanentError("gone"), "sink x").transient is False


def test_a_client_error_marked_transient_is_retried_with_its_retry_after() -> None:
    e = itg.RateLimitError("slow down", status=429, retry_after=12)
    v = classify(e, "transform route")
    assert v.transient and v.retry_after == 12.0
    assert v.reason.startswith("transform route: RateLimitError: ")


def test_a_database_error_is_ours_and_retried() -> None:
    v = classify(sqlite3.IntegrityError("UNIQUE constraint failed"), "sink itglue")
    assert (v.transient, v.storage) == (True, False)
    assert v.reason == "sink itglue: database error: UNIQUE constraint failed"


def _raised_from(cause: Exception, outer: Exception) -> Exception:
    try:
        try:
            raise cause
        except Exception as e:
            raise outer from e
    except Exception as e:
        return e


@pytest.mark.parametrize(
    "error",
    [
        sqlite3.OperationalError("database or disk is full"),
        sqlite3.OperationalError("cannot rollback - no transaction is active"),
        sqlite3.OperationalError("disk I/O error"),
        sqlite3.OperationalError("database is locked"),
        sqlite3.DatabaseError("database disk image is malformed"),
        OSError(errno.ENOSPC, "No space left on device", "/state/cache.db"),
        OSError(errno.EDQUOT, "Disk quota exceeded"),
        OSError(errno.EIO, "Input/output error"),
        OSError(errno.EROFS, "Read-only file system"),
        SpoolWriteError("spool /state/spool: cannot write: No space left on device"),
        # wrapped by a plugin, even as "permanent": still the engine's storage (issue 10)
        _raised_from(sqlite3.OperationalError("database or disk is full"), PermanentError("x")),
        _raised_from(OSError(errno.ENOSPC, "No space left"), ValueError("cache write")),
    ],
)
def test_storage_trouble_is_never_the_records_failure(error: Exception) -> None:
    v = classify(error, "transform route")
    assert v.storage and v.transient
    assert v.reason.startswith("transform route: ")


@pytest.mark.parametrize(
    ("error", "unexpected"),
    [
        (KeyError("oops"), True),  # a bug: its traceback is logged
        (RuntimeError("bug"), True),
        (ValueError("bad value"), False),  # the input's fault, said in the reason
        (OSError("disk"), False),
        (itg.ValidationError("422", status=422), False),  # a client error, not transient
    ],
)
def test_anything_else_fails_the_record_naming_the_plugin(
    error: Exception, unexpected: bool
) -> None:
    v = classify(error, "transform picky")
    assert not v.transient
    assert v.reason == f"transform picky raised {type(error).__name__}: {error}"
    assert v.unexpected is unexpected
