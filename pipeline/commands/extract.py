"""``itglue-ingest extract FILE``: what a file would become in IT Glue, nothing uploaded.

The file goes through the configured ``mime`` and ``extract`` transforms exactly as in
the engine (the same plugins, options, worker process and limits), in a throw-away state
folder; the sections are printed as HTML, or written with ``--preview`` as a page to
open in a browser (pictures inline).
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import tempfile
from pathlib import Path

import click

from pipeline.context import EngineContext
from pipeline.errors import Rejected
from pipeline.hooks import HookFacade
from pipeline.records import Blob, DocumentRecord, Section
from pipeline.runner.assembly import Assembly, limits_of, plugin_manager_for
from pipeline.settings import ConfigError, Settings, parse_settings

from .common import CONFIG_ENVVAR, ConfigFileError, load_config


def section_html(section: Section, *, inline_pictures: bool) -> str:
    """One section as a reader would see it."""
    if section.kind == "heading":
        level = section.level or 2
        return f"<h{level}>{section.content}</h{level}>"
    if section.kind == "image" and section.image is not None:
        image = section.image
        if inline_pictures:
            data = base64.b64encode(image.path.read_bytes()).decode("ascii")
            src = f"data:{image.mime_type};base64,{data}"
        else:
            src = image.file_name
        alt = html.escape(image.alt or image.file_name)
        return f'<figure><img src="{html.escape(src)}" alt="{alt}"></figure>'
    return section.content


def preview_page(record: DocumentRecord) -> str:
    body = "\n".join(section_html(s, inline_pictures=True) for s in record.sections)
    files = "".join(f"<li>{html.escape(b.file_name)}</li>" for b in record.files)
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
        f"<title>{html.escape(record.name)}</title></head><body>\n"
        f"<h1>{html.escape(record.name)}</h1>\n{body}\n"
        f"<hr><p>Attached:</p><ul>{files}</ul>\n</body></html>\n"
    )


def extract_file(settings: Settings, path: Path, state_dir: Path) -> DocumentRecord:
    """``path`` after the ``mime`` and ``extract`` transforms of ``settings``."""
    data = path.read_bytes()
    record = DocumentRecord(
        source="cli",
        source_ref=str(path),
        name=path.name,
        files=[
            Blob(
                file_name=path.name,
                path=path,
                size=len(data),
                sha256=hashlib.sha256(data).hexdigest(),
            )
        ],
    )
    hook = HookFacade(plugin_manager_for(settings))
    context = EngineContext(state_dir=state_dir, limits=limits_of(settings), hook=hook)
    assembly = Assembly(settings, hook, check=False)
    transforms = [assembly.transform(n, context, "transform") for n in ("mime", "extract")]
    try:
        for transform in transforms:
            record = transform.apply(record)
    finally:
        for transform in transforms:
            transform.close()
        context._close()
    return record


@click.command("extract")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--preview",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write an HTML page of the document (pictures inline) to open in a browser.",
)
@click.option("--json", "as_json", is_flag=True, help="The sections and the outcome as JSON.")
@click.option(
    "-c",
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar=CONFIG_ENVVAR,
    help=f"TOML configuration ([transforms.extract], plugins); or ${CONFIG_ENVVAR}.",
)
def extract(file: Path, preview: Path | None, as_json: bool, config_path: Path | None) -> None:
    """Show what FILE would become in IT Glue (its sections), without uploading anything."""
    settings = load_config(config_path) if config_path else parse_settings({})
    with tempfile.TemporaryDirectory(prefix="itglue-ingest-extract-") as tmp:
        try:
            record = extract_file(settings, file, Path(tmp))
        except Rejected as e:
            raise click.ClickException(e.reason) from None
        except ConfigError as e:
            raise ConfigFileError(str(e)) from None
        info = record.metadata.get("extract", {})
        if as_json:
            sections = [
                {
                    "type": s.resource_type,
                    "level": s.level,
                    "html": section_html(s, inline_pictures=False),
                }
                for s in record.sections
            ]
            click.echo(json.dumps({"extract": info, "sections": sections}, indent=2))
        else:
            for section in record.sections:
                click.echo(section_html(section, inline_pictures=False))
        if preview is not None:
            preview.write_text(preview_page(record), encoding="utf-8")
    status = info.get("status", "unsupported")
    extractor = f" by {info['extractor']}" if info.get("extractor") else ""
    click.echo(
        f"{file.name}: {info.get('mime') or 'unknown type'}, {status}{extractor},"
        f" {len(record.sections)} section(s)"
        + (f"; {info['reason']}" if info.get("reason") else "")
        + (f"; preview in {preview}" if preview else ""),
        err=True,
    )


COMMANDS = (extract,)
