"""The ``mime`` transform: sniff each file's real type with libmagic, allow or deny it.

What a source claims (an extension, a mail part's Content-Type) is easy to get wrong or to
fake; IT Glue users open what we attach. So the type libmagic sniffs from the spooled bytes
wins: it becomes ``Blob.mime_type`` while the claim stays in ``Blob.claimed_mime``.

libmagic is given the spooled file's path (``from_file``: it reads as much as it needs,
up to its ``bytes_max`` of several MiB), not a head buffer: legacy OLE documents
(.doc/.xls/.ppt) are only told apart from a generic ``application/x-ole-storage`` after
~64 KB.

Policy (``[transforms.mime]``): a file passes when its sniffed type matches a pattern of
``allow`` and none of ``deny`` (deny wins). Patterns are ``type/subtype`` with ``*``
wildcards (``image/*``), case-insensitive. The default allows everything except native
executables, libraries and installers (nothing a documentation system should be handed
from a drop folder or a mailbox) and empty files (almost always a failed scan or copy).
Scripts (``text/x-shellscript``, PowerShell) stay allowed: MSPs document them on purpose.

A file whose extension does not fit its sniffed type (``invoice.pdf`` that is a PNG) is
noted in ``Blob.metadata["extension_mismatch"]``; with ``fix_extension = true`` the proper
extension is appended to the file name (``invoice.pdf.png``), so IT Glue serves it with a
type that opens.
"""

from __future__ import annotations

import fnmatch
import mimetypes
from collections.abc import Callable
from typing import Any

import magic
from pydantic import Field, field_validator

from pipeline import (
    Blob,
    DocumentRecord,
    EngineContext,
    Rejected,
    Transform,
    TransformOptions,
    hookimpl,
)

DEFAULT_DENY: tuple[str, ...] = (
    "application/x-dosexec",  # MS-DOS/Windows executables (older libmagic)
    "application/vnd.microsoft.portable-executable",  # PE32 .exe/.dll (libmagic >= 5.44)
    "application/x-msdownload",
    "application/x-msi",  # Windows installers
    "application/x-ms-installer",
    "application/x-executable",  # ELF executables
    "application/x-pie-executable",
    "application/x-sharedlib",  # ELF shared objects
    "application/x-mach-binary",  # macOS binaries
    "application/x-coredump",
    "application/x-object",
    "inode/x-empty",  # a 0-byte file: a failed scan or copy, not a document
    "application/x-empty",
)

# Sniffed types too generic to say that an extension is wrong (a CSV sniffs as text/plain,
# an OOXML file libmagic cannot place as application/zip, an old .msg as OLE storage).
_GENERIC = frozenset(
    {
        "application/octet-stream",
        "application/zip",
        "application/x-ole-storage",
        "application/cdfv2",
        "text/plain",
    }
)


def _pattern(value: str) -> str:
    v = value.strip().lower()
    if "/" not in v:
        raise ValueError(f"{value!r} is not a MIME pattern like 'application/pdf' or 'image/*'")
    return v


class MimeOptions(TransformOptions):
    """``[transforms.mime]``."""

    allow: list[str] = Field(default_factory=lambda: ["*/*"])
    deny: list[str] = Field(default_factory=lambda: list(DEFAULT_DENY))
    fix_extension: bool = False

    @field_validator("allow", "deny")
    @classmethod
    def _patterns(cls, values: list[str]) -> list[str]:
        return [_pattern(v) for v in values]


def _matches(mime_type: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatchcase(mime_type, p) for p in patterns)


def _extension(file_name: str) -> str:
    dot = file_name.rfind(".")
    return file_name[dot:].lower() if dot > 0 else ""


def extension_mismatch(file_name: str, sniffed: str) -> dict[str, Any] | None:
    """What is wrong with ``file_name``'s extension for a file of type ``sniffed``, or None.

    No extension counts as a mismatch (nothing tells a viewer the type); an extension that
    is one of ``mimetypes``' known extensions for the sniffed type, or any extension when
    the sniffed type is too generic to judge, does not.
    """
    ext = _extension(file_name)
    if sniffed in _GENERIC:
        return None
    known = mimetypes.guess_all_extensions(sniffed, strict=False)
    if not known or ext in known:
        return None
    claimed = mimetypes.guess_type(file_name, strict=False)[0]
    if claimed is not None and claimed.split("/")[0] == "text" == sniffed.split("/")[0]:
        return None  # text/csv vs text/x-... : both text, any viewer copes
    preferred = mimetypes.guess_extension(sniffed, strict=False) or known[0]
    return {"extension": ext or None, "extension_type": claimed, "suggested_extension": preferred}


class MimeTransform(Transform):
    """Sniff, set the effective type, reject what the policy does not allow."""

    options_model = MimeOptions

    def __init__(self, name: str, options: Any, context: EngineContext) -> None:
        super().__init__(name, options, context)
        self.opts: MimeOptions = (
            options if isinstance(options, MimeOptions) else MimeOptions.model_validate(options)
        )
        # One libmagic handle per transform; python-magic serialises calls on it with its
        # own lock, so the engine's workers can share it.
        self._magic = magic.Magic(mime=True)
        self._sniff: Callable[[str], str] = self._magic.from_file

    def sniff(self, blob: Blob) -> str:
        try:
            result = self._sniff(str(blob.path))
        except (OSError, magic.MagicException) as e:
            raise Rejected(
                f"file {blob.file_name!r} could not be read to sniff its type: {e}"
            ) from e
        return result.split(";")[0].strip().lower() or "application/octet-stream"

    def check(self, blob: Blob) -> Blob:
        sniffed = self.sniff(blob)
        if _matches(sniffed, self.opts.deny) or not _matches(sniffed, self.opts.allow):
            why = "denied" if _matches(sniffed, self.opts.deny) else "not allowed"
            raise Rejected(
                f"file {blob.file_name!r} is {sniffed} (sniffed by libmagic"
                + (f"; claimed {blob.claimed_mime}" if blob.claimed_mime else "")
                + f"), which is {why} by [transforms.mime] "
                + ("deny" if why == "denied" else "allow")
                + "; change that list to accept it"
            )
        claimed = blob.claimed_mime or mimetypes.guess_type(blob.file_name, strict=False)[0]
        metadata = dict(blob.metadata)
        file_name = blob.file_name
        mismatch = extension_mismatch(file_name, sniffed)
        if mismatch is not None:
            metadata["extension_mismatch"] = mismatch
            if self.opts.fix_extension and mismatch["suggested_extension"]:
                file_name = file_name + mismatch["suggested_extension"]
                metadata["original_file_name"] = blob.file_name
        return blob.model_copy(
            update={
                "mime_type": sniffed,
                "claimed_mime": claimed,
                "metadata": metadata,
                "file_name": file_name,
            }
        )

    def apply(self, record: DocumentRecord) -> DocumentRecord:
        if not record.files:
            return record
        files = [self.check(blob) for blob in record.files]
        return record.model_copy(update={"files": files})


@hookimpl
def ingest_register_transforms(register: Callable[[str, type[Transform]], None]) -> None:
    register("mime", MimeTransform)
