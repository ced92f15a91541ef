"""The filesystem source's own keys of a ``[[sources]]`` table (``type = "filesystem"``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from pipeline import FolderField, SourceOptions, check_folder


class FilesystemOptions(SourceOptions):
    """Validated options; ``config/example.toml`` documents each one."""

    path: FolderField
    recursive: bool = True
    # "fixed": the source's ``organization`` key (or routing rules) decide;
    # "subfolder": the first sub-folder names the organization (``drop/Acme/x.pdf``),
    # files at the top level fall back to ``organization``.
    organization_from: Literal["fixed", "subfolder"] = "fixed"
    include: list[str] = Field(default_factory=list)
    exclude: list[str] = Field(default_factory=list)
    after: Literal["move", "delete", "keep"] = "move"
    # What happens to a file that failed for good: "move" to failed_dir with a
    # <name>.error.txt; "keep" leaves it in place. Default: move, unless after = "keep".
    on_failure: Literal["move", "keep"] | None = None
    processed_dir: Path | None = None  # default <path>/processed (relative: to path)
    failed_dir: Path | None = None  # default <path>/failed (relative: to path)
    observer: Literal["native", "polling"] = "native"
    poll_interval: float = Field(default=2.0, gt=0, le=3600)
    rescan_interval: float = Field(default=300.0, gt=0)
    stability_delay: float = Field(default=2.0, ge=0, le=3600)
    follow_symlinks: bool = False
    missing_retry_interval: float = Field(default=30.0, gt=0)
    parallel_reads: int = Field(default=4, ge=1, le=32)  # reader threads, a batch each (backlogs)

    @model_validator(mode="after")
    def _resolve_dirs(self) -> FilesystemOptions:
        if self.processed_dir is None:
            self.processed_dir = self.path / "processed"
        else:  # relative: to the drop folder (not the configuration's, as PathField)
            self.processed_dir = self.path / self.processed_dir.expanduser()
        if self.failed_dir is None:
            self.failed_dir = self.path / "failed"
        else:
            self.failed_dir = self.path / self.failed_dir.expanduser()
        for key, value in (("processed_dir", self.processed_dir), ("failed_dir", self.failed_dir)):
            if value.resolve() == self.path.resolve():
                raise ValueError(f"{key} must not be the drop folder itself")
            try:
                check_folder(value)
            except ValueError as e:
                raise ValueError(f"{key}: {e}") from None
        if self.on_failure is None:
            self.on_failure = "keep" if self.after == "keep" else "move"
        return self

    @property
    def processed(self) -> Path:
        assert self.processed_dir is not None
        return self.processed_dir

    @property
    def failed(self) -> Path:
        assert self.failed_dir is not None
        return self.failed_dir
