"""``itglue-ingest demo``: the whole pipeline in a few seconds, with no account and no setup.

It starts the IT Glue emulator in-process (HTTPS on 127.0.0.1, demo organizations),
makes a drop folder with real sample documents in sub-folders named after those
organizations, runs the configured pipeline once (filesystem source -> mime -> route ->
title -> dedupe -> IT Glue sink) and prints what landed where, read back from the
emulator and checked byte for byte.

Where things come from, so that it works from a checkout, an editable install and a
wheel alike: the configuration and the samples are package data of ``pipeline``
(``pipeline/samples/``, read through ``importlib.resources``). ``config/demo.toml`` in the
repository is a symbolic link to ``pipeline/samples/demo.toml`` -- one file, visible next
to ``config/example.toml`` for readers, shipped inside the package for the command.

The folder stays runnable: the demo writes ``config.toml`` there first (the sample with
the emulator's URL, its kept CA and key file; paths relative to the folder) and runs
exactly that file; ``itglue-ingest emulator --state-dir DIR`` serves the same emulator
again (:class:`~pipeline.commands.emulator.EmulatorHome`), and ``once -c DIR/config.toml``
delivers what is dropped into ``DIR/drop``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import tempfile
import threading
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any

import click

from itglue_common import escape_markup, human_size
from pipeline.settings import ConfigError, Settings

from .common import ConfigFileError, is_tty, load_config
from .emulator import DEFAULT_KEY, EmulatorHome

SAMPLES_PACKAGE = "pipeline"
SAMPLES_DIR = "samples"
CONFIG_NAME = "demo.toml"
EMULATOR_KEY = DEFAULT_KEY
MARKER = ".itglue-ingest-demo"

# sample file -> where the demo drops it (the first sub-folder names the organization;
# a file at the top goes to [routing] fallback_organization). The second copy of the
# checklist shows deduplication: same content, same organization, uploaded once.
PLACEMENT: tuple[tuple[str, str], ...] = (
    ("Quarterly network review.pdf", "Acme Corp/Quarterly network review.pdf"),
    ("rack_diagram.png", "Acme Corp/rack_diagram.png"),
    ("asset-inventory.csv", "Globex/asset-inventory.csv"),
    ("Onboarding checklist.docx", "Initech/Onboarding checklist.docx"),
    ("Onboarding checklist.docx", "Initech/old/Onboarding checklist (copy).docx"),
    ("Quarterly network review.pdf", "Quarterly network review.pdf"),
)


def samples_root() -> Any:
    """The packaged samples folder (a Traversable: a path in a checkout or a wheel)."""
    return resources.files(SAMPLES_PACKAGE).joinpath(SAMPLES_DIR)


def load_demo_config() -> dict[str, Any]:
    """The demo's TOML configuration as a dict (before the run-time values are added)."""
    text = samples_root().joinpath(CONFIG_NAME).read_text(encoding="utf-8")
    return tomllib.loads(text)


def prepare_state_dir(state_dir: Path | None) -> Path:
    """A fresh demo folder: a new temporary one, or ``state_dir`` (emptied if it is an
    earlier demo's; refused if it holds anything else)."""
    if state_dir is None:
        path = Path(tempfile.mkdtemp(prefix="itglue-ingest-demo-"))
    else:
        path = state_dir.resolve()
        if path.exists() and any(path.iterdir()):
            if not (path / MARKER).exists():
                raise click.UsageError(
                    f"{path} is not empty and not an earlier demo folder; pick another"
                    " --state-dir (the demo empties it)"
                )
            shutil.rmtree(path)
        path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o700)
    (path / MARKER).write_text("made by itglue-ingest demo; removed and remade by the next\n")
    return path


def place_samples(drop: Path) -> list[tuple[Path, bytes]]:
    """Copy the packaged samples into ``drop`` as :data:`PLACEMENT` says."""
    root = samples_root()
    placed = []
    for sample, rel in PLACEMENT:
        data = root.joinpath(sample).read_bytes()
        target = drop / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        placed.append((target, data))
    return placed


def config_text(base_url: str, home: EmulatorHome) -> str:
    """The demo's configuration as the file it leaves: the sample with the emulator's
    URL, CA and key file filled in; paths relative to the demo folder (where it lives)."""
    lines = samples_root().joinpath(CONFIG_NAME).read_text(encoding="utf-8").splitlines()
    body = lines[next(i for i, line in enumerate(lines) if not line.startswith("#")) :]
    at = body.index('instance = "demo"') + 1
    body[at:at] = [
        "# the emulator (`itglue-ingest emulator --state-dir` keeps its port, CA and key)",
        f"base_url = {json.dumps(base_url)}",
        f"ca_bundle = {json.dumps(home.ca_file.relative_to(home.folder).as_posix())}",
        f"api_key_file = {json.dumps(home.key_file.name)}",
        "",
        "[state]",
        'dir = "state"',
    ]
    header = [
        "# Written by `itglue-ingest demo`: the demo's pipeline against the IT Glue emulator,",
        "# runnable again as it is (relative paths are taken from this file's folder):",
        "#   itglue-ingest emulator --state-dir <this folder>     # in one terminal",
        "#   itglue-ingest once -c <this folder>/config.toml      # or run, in another",
        "# Drop files into drop/<organization>/ first. For a real IT Glue, start from",
        "# config/example.toml instead (region, api key, your folders).",
    ]
    return "\n".join([*header, *body]) + "\n"


def write_config(text: str, folder: Path) -> Settings:
    """Write the configuration into ``folder`` and load it back (the demo runs the file)."""
    path = folder / "config.toml"
    path.write_text(text, encoding="utf-8")
    return load_config(path)


@contextmanager
def _quiet(verbose: bool) -> Iterator[None]:
    """Keep per-record INFO lines off the terminal while the progress bar runs."""
    root = logging.getLogger()
    level = root.level
    if not verbose:
        root.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        root.setLevel(level)


def landed(emu: Any, originals: dict[str, bytes]) -> list[dict[str, Any]]:
    """What is in the emulator now: one row per document, with its attachments checked
    byte for byte against the sample they came from."""
    records = emu.state()["records"]
    orgs = {o["id"]: o["name"] for o in records.get("organizations", [])}
    by_doc: dict[str, list[dict[str, Any]]] = {}
    for att in records.get("attachments", []):
        if att.get("resource-type") == "documents":
            by_doc.setdefault(str(att["resource-id"]), []).append(att)
    rows = []
    for doc in records.get("documents", []):
        files = []
        for att in by_doc.get(str(doc["id"]), []):
            content = emu.attachment_content(att["id"])
            expected = originals.get(att["name"])
            files.append(
                {
                    "name": att["name"],
                    "size": len(content),
                    "identical": expected is not None
                    and hashlib.sha256(content).digest() == hashlib.sha256(expected).digest(),
                }
            )
        rows.append(
            {
                "organization": orgs.get(str(doc.get("organization-id")), "?"),
                "document": doc.get("name"),
                "id": doc["id"],
                "published": bool(doc.get("published")),
                "files": files,
            }
        )
    return sorted(rows, key=lambda r: (r["organization"], r["document"]))


def print_report(
    rows: list[dict[str, Any]], summary: Any, folder: Path, settings: Settings, drop: Path
) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=None if is_tty() else 120)
    table = Table(title="Landed in IT Glue (read back from the emulator)")
    table.add_column("Organization", no_wrap=True)
    table.add_column("Document")
    table.add_column("Id")
    table.add_column("Attachments")
    table.add_column("Size", justify="right")
    table.add_column("Content", no_wrap=True)
    table.add_column("Published")
    # names are read back from IT Glue: shown as text, never as rich markup or controls
    for row in rows:
        files = row["files"] or [{"name": "-", "size": 0, "identical": True}]
        table.add_row(
            escape_markup(str(row["organization"])),
            escape_markup(str(row["document"])),
            str(row["id"]),
            "\n".join(escape_markup(str(f["name"])) for f in files),
            "\n".join(human_size(f["size"]) for f in files),
            "\n".join("byte-identical" if f["identical"] else "DIFFERENT" for f in files),
            "yes" if row["published"] else "no",
        )
    console.print(table)
    console.print(
        f"{summary.delivered} delivered, {summary.duplicate} duplicate (same content, same"
        f" organization: uploaded once), {summary.failed} failed, in {summary.elapsed:.1f} s"
    )
    for f in summary.failures:
        console.print(
            f"  failed: {escape_markup(str(f['source_ref']))}: {escape_markup(str(f['reason']))}"
        )
    config = folder / "config.toml"
    console.print(f"State lives in {escape_markup(str(folder))}:")
    console.print(f"  ledger + metadata cache  {escape_markup(str(settings.database_path))}")
    console.print(
        f"  drop folder              {escape_markup(str(drop))}"
        "  (delivered files moved to processed/)"
    )
    console.print(f"  emulator data            {escape_markup(str(folder / 'emulator.json'))}")
    console.print(
        f"  see the ledger           itglue-ingest status -c '{escape_markup(str(config))}'"
    )
    console.print("Run it again (drop files into the drop folder first):")
    console.print(
        f"  itglue-ingest emulator --state-dir '{escape_markup(str(folder))}'   # keep it running"
    )
    console.print(f"  itglue-ingest once -c '{escape_markup(str(config))}'")


@click.command()
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder for the demo's drop folder, database and emulator data"
    " (default: a new temporary folder, kept afterwards). An earlier demo's folder is"
    " emptied; any other non-empty folder is refused.",
)
@click.option("-v", "--verbose", is_flag=True, help="Show the per-record log lines too.")
def demo(state_dir: Path | None, verbose: bool) -> None:
    """Run the whole pipeline against a built-in IT Glue emulator: no account needed.

    Exits 3 when a sample did not land (failed, pending, or not byte-identical), 2 on
    usage errors.
    """
    from itglue_emulator import run_emulator
    from pipeline.runner import Engine

    folder = prepare_state_dir(state_dir)
    home = EmulatorHome(folder)
    drop = folder / "drop"
    placed = place_samples(drop)
    originals = {p.name: data for p, data in placed}
    click.echo(f"Demo folder {folder}: {len(placed)} sample files in {drop}")
    with run_emulator(
        api_key=EMULATOR_KEY, seed="demo", state_file=home.store, ca_dir=home.ca_dir
    ) as emu:
        home.remember(emu.port, emu.api_key)
        settings = write_config(config_text(emu.base_url, home), folder)
        click.echo(f"IT Glue emulator at {emu.base_url} (demo organizations)")
        with _quiet(verbose):
            try:
                engine = Engine(settings)
            except ConfigError as e:
                raise ConfigFileError(str(e)) from None
            with engine:
                if is_tty():
                    from .engine import once_with_progress

                    summary = once_with_progress(engine, threading.Event())
                else:
                    summary = engine.run_once()
        rows = landed(emu, originals)
    print_report(rows, summary, folder, settings, drop)
    if not summary.ok or not all(f["identical"] for r in rows for f in r["files"]):
        raise SystemExit(3)


COMMANDS = (demo,)
