"""A large drop-folder backlog into an unthrottled emulator: files/s, peak RSS.

Two questions, answered in one run (each pass in its own child process, so its peak
RSS is its own; each backlog against a fresh emulator whose budget never throttles):

1. The limiter's cost does not grow with its window (issue 16). The same backlog with
   the client's window at 300 s and at 1 s, the configured rate the same per second
   in both (3000 per 300 s and 10 per 1 s, each times ``--scale``): the limiter
   records every request in its shared ring and checks the window, but with the
   default scale the window never holds 80 % of its budget, so it never makes a
   request wait. The two passes run side by side, each with its own emulator and
   state: on a shared machine, passes one after the other measure the neighbours'
   load as much as the window (sequential 2,000-file passes at load 8-13 swung between
   17 and 28 files/s whatever the window). Printed: files/s of each over the whole run
   and while both delivered (the first to finish leaves the other the machine), the
   ratio.
2. Group commit (issue 15): the backlog and then the same files dropped again (every
   one a duplicate of a delivered document), with ``[state] group_commit`` off and on,
   on the ``--backend`` state database (``postgresql``: a throw-away durable cluster
   started here; group commit is SQLite's, so both of its rows take the same path):
   files/s, peak RSS and the engine process's CPU per file, as one table.

Run: ``.venv/bin/python bench/bench_backlog.py [--files 100000] [--only window|commit]
[--backend sqlite|postgresql] [--commit off|on|both] [--keep DIR] [--profile PREFIX]``
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ORGS = ("Acme Corp", "Globex", "Initech", "Umbrella Corporation")
BACKENDS = ("sqlite", "postgresql")  # [state] backend values the commit table can run on


def content(tag: str, i: int) -> bytes:
    """File ``i`` of the backlog ``tag``: the same bytes when the backlog is dropped again."""
    noise = random.Random(f"{tag}-{i}").randbytes(512)
    return f"%PDF-1.4\n% {tag} document {i}\n".encode() + noise + b"\n%%EOF\n"


def drop_backlog(drop: Path, tag: str, n: int) -> None:
    """``n`` files in the organization sub-folders, last written an hour ago (settled)."""
    for org in ORGS:
        (drop / org).mkdir(parents=True, exist_ok=True)
    old = time.time() - 3600
    for i in range(n):
        path = drop / ORGS[i % len(ORGS)] / f"{tag}-{i:06d}.pdf"
        path.write_bytes(content(tag, i))
        os.utime(path, (old, old))


def settings_table(emu: dict[str, str], pas: dict[str, Any]) -> dict[str, Any]:
    window = float(pas["window"])
    return {
        "itglue": {
            "instance": "bench",
            "base_url": emu["base_url"],
            "api_key_env": "ITGLUE_BENCH_KEY",
            "ca_bundle": emu["ca_file"],
            # the same rate per second whatever the window: 10/s, times the scale
            "rate_limit": round(10 * window * pas["scale"]),
            "rate_window": window,
        },
        "state": {
            "dir": pas["state"],
            "group_commit": pas["group_commit"],
            "backend": pas.get("backend", "sqlite"),
            **({"dsn": pas["dsn"]} if pas.get("dsn") else {}),
        },
        "pipeline": {
            "workers": pas["workers"],
            "once_timeout": 3600,
            **({"transforms": pas["transforms"]} if pas.get("transforms") else {}),
        },
        "sources": [
            {
                "name": "drop",
                "type": "filesystem",
                "path": pas["drop"],
                "organization_from": "subfolder",
            }
        ],
    }


class ThreadProfiles:
    """cProfile of every thread of the engine (one profiler per thread, merged): the
    workers and the source's readers do the work, not the thread calling ``run_once``."""

    def __init__(self) -> None:
        import cProfile
        import threading

        self._cprofile = cProfile
        self._threading = threading
        self._lock = threading.Lock()
        self._profiles: list[Any] = []

    def _new(self, *_: Any) -> None:
        profile = self._cprofile.Profile(time.thread_time)  # CPU, not waits
        with self._lock:
            self._profiles.append(profile)
        profile.enable()  # replaces this hook in the calling thread

    def start(self) -> None:
        self._threading.setprofile(self._new)
        self._new()

    def dump(self, path: str) -> None:
        import pstats

        self._threading.setprofile(None)
        with self._lock:
            profiles = list(self._profiles)
        stats = pstats.Stats(profiles[0])
        for profile in profiles[1:]:
            stats.add(profile)
        stats.dump_stats(path)


def peak_rss_mib() -> float:
    """Peak RSS of this process image (``VmHWM``). Not ``ru_maxrss``: Linux carries a
    parent's peak across fork and exec, so a pass started by a bench whose emulator
    holds a 100,000-file backlog's documents reported that emulator's 290-330 MiB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # no procfs


def child_pass(spec: str) -> None:
    """One ``run_once`` over the drop folder; prints its figures as JSON."""
    import logging

    from pipeline.plugins import get_plugin_manager
    from pipeline.runner import Engine
    from pipeline.settings import parse_settings

    logging.basicConfig(level=logging.WARNING)
    emu, pas = json.loads(spec)
    os.environ["ITGLUE_BENCH_KEY"] = emu["api_key"]
    pm = get_plugin_manager(load_entrypoints=False)
    engine = Engine(parse_settings(settings_table(emu, pas)), pm)
    profiles = ThreadProfiles() if pas.get("profile") else None
    try:
        t0 = time.perf_counter()
        if profiles is not None:
            profiles.start()
        summary = engine.run_once()
        elapsed = time.perf_counter() - t0
        client = engine.context.built_client()
        limiter = client.rate_limiter.get_stats() if client is not None else {}
    finally:
        engine.close()
    if profiles is not None:
        profiles.dump(f"{pas['profile']}-{pas['phase']}.prof")
    usage = resource.getrusage(resource.RUSAGE_SELF)
    figures = {
        "seconds": elapsed,
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
        "delivered": summary.delivered,
        "duplicate": summary.duplicate,
        "failed": summary.failed,
        "peak_rss_mib": peak_rss_mib(),
        "limiter_waits": limiter.get("waits", 0),
        "limiter_wait_seconds": limiter.get("wait_seconds", 0.0),
    }
    print(json.dumps(figures))


def start_pass(emu: Any, root: Path, name: str, **pas: Any) -> subprocess.Popen[bytes]:
    """Start one pass; its output goes to files (a pipe nobody reads while passes run
    side by side would fill up with the engine's warnings and stall it)."""
    spec = {"state": str(root / f"state-{name}"), "phase": name, **pas}
    emu_spec = {"base_url": emu.base_url, "ca_file": str(emu.ca_file), "api_key": emu.api_key}
    with open(root / f"{name}.out", "wb") as out, open(root / f"{name}.err", "wb") as err:
        return subprocess.Popen(
            [sys.executable, __file__, "--child", json.dumps([emu_spec, spec])],
            stdout=out,
            stderr=err,
        )


def finish_pass(root: Path, name: str, child: subprocess.Popen[bytes]) -> dict[str, Any]:
    child.wait()
    out = (root / f"{name}.out").read_text(errors="replace")
    if child.returncode != 0:
        err = (root / f"{name}.err").read_text(errors="replace")
        raise SystemExit(f"pass {name} failed:\n{out}\n{err[-20_000:]}")
    figures: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return figures


def run_pass(emu: Any, root: Path, name: str, **pas: Any) -> dict[str, Any]:
    return finish_pass(root, name, start_pass(emu, root, name, **pas))


def documents(emu: Any) -> int:
    """Documents the emulator holds (one per delivered file)."""
    with emu.app.store.lock:
        return len(emu.app.store.tables["documents"])


def side_by_side(
    root: Path, n: int, windows: dict[str, float], progress: float, **pas: Any
) -> dict[str, Any]:
    """The backlog once per window, all passes started together, each against its own
    fresh emulator; each pass's figures gain ``overlap_files`` (documents its emulator
    received while all were delivering), the result ``overlap_seconds`` (how long that
    was) and the load average meanwhile. Every ``progress`` seconds (0: never) a line
    tells how far each is, so a run stopped before its end still leaves figures."""
    from itglue_emulator import run_emulator

    with contextlib.ExitStack() as stack:
        emus = {
            name: stack.enter_context(
                run_emulator(api_key="bench-key", seed="demo", rate_limit=(10**9, 300.0))
            )
            for name in windows
        }
        for name in windows:
            drop_backlog(root / f"drop-{name}", name, n)
        seeded = {name: documents(emu) for name, emu in emus.items()}
        children = {
            name: start_pass(
                emus[name], root, name, drop=str(root / f"drop-{name}"), window=w, **pas
            )
            for name, w in windows.items()
        }
        # compared while all deliver: from when each has delivered its first document
        # (start-up is not the window's) until the first has delivered its whole backlog
        loads = [os.getloadavg()[0]]
        start: tuple[float, dict[str, int]] | None = None
        told = 0.0
        while True:
            counts = {name: documents(emu) - seeded[name] for name, emu in emus.items()}
            if start is None and min(counts.values()) > 0:
                start = (time.perf_counter(), counts)
                told = start[0]
            if max(counts.values()) >= n or any(c.poll() is not None for c in children.values()):
                break
            time.sleep(0.2)
            loads.append(os.getloadavg()[0])
            if start and progress and time.perf_counter() - told >= progress:
                told = time.perf_counter()
                print(progress_line(counts, start, told, loads[-1]), flush=True)
        end = time.perf_counter()
        figures = {name: finish_pass(root, name, child) for name, child in children.items()}
    for name, f in figures.items():
        check(f, n, "delivered", name)
        f["overlap_files"] = counts[name] - start[1][name] if start else 0
    return {
        "passes": figures,
        "overlap_seconds": end - start[0] if start else 0.0,
        "load_mean": sum(loads) / len(loads),
        "load_max": max(loads),
    }


def progress_line(
    counts: dict[str, int], start: tuple[float, dict[str, int]], now: float, load: float
) -> str:
    seconds = now - start[0]
    rates = {name: (count - start[1][name]) / seconds for name, count in counts.items()}
    told = ", ".join(f"{name} {counts[name]:,} delivered" for name in counts)
    speeds = " / ".join(f"{r:.1f}" for r in rates.values())
    first, *_, last = rates
    ratio = rates[first] / rates[last] if rates[last] else float("nan")
    return (
        f"  after {seconds:,.0f} s of both delivering: {told}; {speeds} files/s"
        f" (ratio {first}/{last} {ratio:.3f}), load {load:.1f}"
    )


def backlog_and_rerun(
    root: Path, tag: str, n: int, keep: bool = False, **pas: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The backlog ``tag`` (a fresh emulator and state), then the same files dropped
    again into the same state (all duplicates). ``keep``: the backlog of an earlier run
    in ``root`` (its state and figures) is used again, only the re-run is new."""
    from itglue_emulator import run_emulator

    drop = root / f"drop-{tag}"
    kept = root / f"{tag}.backlog.json"
    files = tag  # what the files are called and hold (a kept backlog's own)
    with run_emulator(api_key="bench-key", seed="demo", rate_limit=(10**9, 300.0)) as emu:
        if keep and kept.exists():
            first = json.loads(kept.read_text())
            files = first.get("tag", tag)
            print(f"  ({files}: the backlog of {first['finished']} in {root}, kept)", flush=True)
            # earlier re-runs' copies ("name (1).pdf"...): each re-run finds what the
            # first found, the backlog's own files (one name clash per file)
            for copy in (drop / "processed").rglob("* (*).pdf"):
                copy.unlink()
        else:
            drop_backlog(drop, files, n)
            first = run_pass(emu, root, tag, drop=str(drop), phase=f"{tag}-backlog", **pas)
            check(first, n, "delivered", tag)
            first["finished"] = time.strftime("%Y-%m-%d %H:%M")
            first["tag"] = files
            first["group_commit"] = bool(pas["group_commit"])
            first["load_at_end"] = os.getloadavg()[0]
            kept.write_text(json.dumps(first))
        drop_backlog(drop, files, n)
        again = run_pass(emu, root, tag, drop=str(drop), phase=f"{tag}-rerun", **pas)
        check(again, n, "duplicate", f"{tag} again")
        again["load_at_end"] = os.getloadavg()[0]
        return first, again


def check(figures: dict[str, Any], n: int, outcome: str, name: str) -> None:
    if figures[outcome] != n or figures["failed"]:
        raise SystemExit(f"{name}: expected {n} {outcome}, got {figures}")


def rate(figures: dict[str, Any], n: int) -> float:
    return n / float(figures["seconds"])


def line(label: str, figures: dict[str, Any], n: int) -> str:
    return (
        f"  {label:41s} {rate(figures, n):8.1f} files/s  {figures['seconds']:8.1f} s"
        f"  peak RSS {figures['peak_rss_mib']:6.1f} MiB"
        f"  CPU (engine process) {1000 * figures['cpu_seconds'] / n:5.2f} ms/file"
    )


def commit_table(
    root: Path,
    n: int,
    backend: str,
    common: dict[str, Any],
    modes: tuple[str, ...] = ("off", "on"),
    keep: bool = False,
) -> None:
    """The backlog and its all-duplicate re-run, group commit off and on: one table.
    PostgreSQL: a throw-away durable cluster (fsync on), a fresh database per backlog
    (group commit is SQLite's: both rows measure the same PostgreSQL path)."""
    if keep and backend == "postgresql":
        raise SystemExit("--keep is for SQLite (the PostgreSQL cluster is a throw-away one)")
    with contextlib.ExitStack() as stack:
        server = None
        if backend == "postgresql":
            from pipeline.testing.postgres import PostgresServer

            server = stack.enter_context(PostgresServer(durable=True))
        runs = {
            label: backlog_and_rerun(
                root,
                # one kept backlog for both modes' re-runs (a 100,000-file one is long)
                f"{backend}-kept" if keep else f"{backend}-{label}",
                n,
                keep,
                window=300,
                group_commit=label == "on",
                backend=backend,
                **({"dsn": server.create_database()} if server is not None else {}),
                **common,
            )
            for label in modes
        }
    print("group commit (300 s window):")
    print(
        f"  {'backend':10s} {'pass':22s} {'group commit':>12s} {'files/s':>9s} {'seconds':>9s}"
        f" {'peak RSS MiB':>13s} {'CPU ms/file':>12s}"
    )
    for index, what in enumerate(("backlog", "all-duplicate re-run")):
        for label, figures in runs.items():
            f = figures[index]
            mode = label  # a kept backlog may come from a run with the other mode
            if index == 0 and f.get("group_commit", label == "on") != (label == "on"):
                mode = f"{'on' if label == 'off' else 'off'} (kept)"
            print(
                f"  {backend:10s} {what:22s} {mode:>12s} {rate(f, n):9.1f} {f['seconds']:9.1f}"
                f" {f['peak_rss_mib']:13.1f} {1000 * f['cpu_seconds'] / n:12.2f}"
            )
    loads = [
        f"{f['load_at_end']:.1f}" for pair in runs.values() for f in pair if "load_at_end" in f
    ]
    print(f"  load average at the end of each pass: {', '.join(loads)}")
    if set(runs) != {"off", "on"}:
        return
    (off_backlog, off_dup), (on_backlog, on_dup) = runs["off"], runs["on"]
    print(
        f"  speed-up ({backend}): backlog {rate(on_backlog, n) / rate(off_backlog, n):.2f}x,"
        f" all-duplicate re-run {rate(on_dup, n) / rate(off_dup, n):.2f}x"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=100_000)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--scale", type=float, default=1000.0, help="times 10 requests/s")
    ap.add_argument("--only", choices=("window", "commit"))
    ap.add_argument(
        "--progress", type=float, default=60.0, help="seconds between progress lines, 0: none"
    )
    ap.add_argument(
        "--backend", choices=BACKENDS, default="sqlite", help="[state] backend of the commit table"
    )
    ap.add_argument(
        "--profile", metavar="PREFIX", help="cProfile each pass (all threads) to PREFIX-<pass>.prof"
    )
    ap.add_argument(
        "--transforms",
        help="comma-separated [pipeline] transforms (default: the pipeline's); e.g."
        " mime,route,title leaves out the extraction of the bench's dummy PDFs",
    )
    ap.add_argument(
        "--commit",
        choices=("off", "on", "both"),
        default="both",
        help="group commit of the commit table's passes (default: both)",
    )
    ap.add_argument(
        "--keep",
        metavar="DIR",
        help="work in DIR (SQLite) and keep the backlog there (one for both modes): a later"
        " run with the same DIR only re-runs it (a 100,000-file backlog takes most of an hour)",
    )
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child_pass(args.child)
        return
    n = args.files
    common = {
        "workers": args.workers,
        "scale": args.scale,
        "profile": args.profile,
        "transforms": args.transforms.split(",") if args.transforms else None,
    }
    with contextlib.ExitStack() as stack:
        if args.keep:
            root = Path(args.keep).resolve()
            root.mkdir(parents=True, exist_ok=True)
        else:
            root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-backlog-")))
        print(
            f"bench_backlog: {n:,} files of ~0.5 KiB in {len(ORGS)} organization folders,"
            f" {args.workers} workers, transforms {args.transforms or 'default'},"
            " emulator unthrottled;"
            f" load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
        )
        if args.only != "commit":
            both = side_by_side(
                root, n, {"w300": 300.0, "w1": 1.0}, args.progress, group_commit=True, **common
            )
            w300, w1 = both["passes"]["w300"], both["passes"]["w1"]
            rps = 10 * args.scale
            print(
                f"limiter window, both passes side by side (the same {rps:,.0f} requests/s"
                " configured in both):"
            )
            print(line("backlog, 300 s window", w300, n))
            print(line("backlog, 1 s window", w1, n))
            overlap = both["overlap_seconds"]
            whole = rate(w300, n) / rate(w1, n)
            while_both = [f["overlap_files"] / overlap if overlap else 0.0 for f in (w300, w1)]
            if min(while_both) > 0:
                print(
                    f"  while both delivered ({overlap:.1f} s): 300 s window"
                    f" {while_both[0]:.1f} files/s, 1 s window {while_both[1]:.1f} files/s"
                )
                print(
                    f"  ratio 300 s / 1 s window: {while_both[0] / while_both[1]:.3f} while both"
                    f" delivered, {whole:.3f} over the whole runs"
                )
            else:  # too small a backlog: one ended before the other delivered anything
                print(f"  ratio 300 s / 1 s window: {whole:.3f} over the whole runs")
            waits = [
                f"{f['limiter_waits']} ({f['limiter_wait_seconds']:.1f} s)" for f in (w300, w1)
            ]
            print(
                f"  requests the limiter made wait: 300 s window {waits[0]}, 1 s window {waits[1]}"
            )
            print(
                f"  load average during the passes: mean {both['load_mean']:.1f},"
                f" max {both['load_max']:.1f}; peak RSS of the bench process (the emulators)"
                f" {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.1f} MiB"
            )
        if args.only != "window":
            modes = ("off", "on") if args.commit == "both" else (args.commit,)
            commit_table(root, n, args.backend, common, modes, keep=bool(args.keep))
        print(f"load average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
