"""The extraction worker process (started by :mod:`.pool`): caps its memory, then runs
one extractor job at a time until its engine closes the pipe."""

from __future__ import annotations

import contextlib
import os
import resource
import sys
import threading
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from pipeline import ExtractionError


def cap_memory(limit: int) -> None:
    """``RLIMIT_AS``: an allocation past ``limit`` bytes fails (MemoryError), it does not
    grow the worker until the kernel's OOM killer picks a victim, maybe the engine."""
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def answer(job: tuple[Any, str, Any]) -> tuple[str, Any]:
    extractor, path, limits = job
    try:
        return "ok", extractor(Path(path), limits)
    except ExtractionError as e:
        return "failed", str(e) or type(e).__name__
    except RecursionError:
        return "failed", "the file is nested too deeply to parse"
    except MemoryError:
        raise
    except Exception as e:
        return "failed", f"{type(e).__name__}: {e}"


def serve(jobs: Connection, answers: Connection) -> None:
    while True:
        try:
            job = jobs.recv()
        except (EOFError, OSError):
            return  # the engine is gone, or closed the pool
        try:
            result = answer(job)
        except MemoryError:
            # the heap may be in any state: say so if there is room left, and go
            with contextlib.suppress(BaseException):
                answers.send(("crashed", "it needed more memory than the worker's cap"))
            return
        try:
            answers.send(result)
        except MemoryError:
            return
        except Exception as e:  # a result that does not pickle: an extractor bug
            answers.send(("failed", f"the extractor's result cannot be sent: {e}"))


def exit_with_the_engine(engine_pid: int) -> None:
    """A job may loop in C code and never read the closed pipe: when the engine is gone
    (killed: this process was handed to another parent), end at once."""

    def watch() -> None:
        while os.getppid() == engine_pid:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="engine-watch", daemon=True).start()


def main() -> None:
    jobs_fd, answers_fd, memory_limit = (int(a) for a in sys.argv[1:4])
    exit_with_the_engine(int(sys.argv[4]))
    # stdout is not ours to write: an extractor's stray print must not reach anyone
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
    cap_memory(memory_limit)
    answers = Connection(answers_fd, readable=False)
    answers.send(("ready", None))
    serve(Connection(jobs_fd, writable=False), answers)
