"""Every file a docstring, comment or document names is in the repository: no reference
to notes that only the authors had (the IT Glue facts are in docs/itglue-api.md)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SKIP = {".venv", ".git", "build", "dist", "node_modules"}
SUFFIXES = {".py", ".md", ".toml", ".sh", ".service", ".cfg", ".txt"}
# a Markdown file name, with or without folders: README.md, docs/admin.md, ../config/x.md
MARKDOWN = re.compile(r"(?<![\w/.-])((?:\.\.?/)*(?:[\w-]+/)*[\w-]+\.md)\b")
# a path into the repository's own folders, with a file extension
REPO_PATH = re.compile(
    r"(?<![\w/.-])((?:\.\./)*(?:docs|contrib|config|scripts|examples|bench)/[\w./-]*\.\w+)"
)


def _texts() -> list[Path]:
    files = [ROOT / "Containerfile"]
    for path in ROOT.rglob("*"):
        rel = path.relative_to(ROOT)
        if SKIP & set(rel.parts) or any(p.endswith(".egg-info") for p in rel.parts):
            continue
        if path.is_file() and path.suffix in SUFFIXES:
            files.append(path)
    return files


def _exists(name: str, mentioned_in: Path, basenames: set[str]) -> bool:
    name = name.rstrip(".")
    if "/" not in name:
        return name in basenames
    return (ROOT / name).exists() or (mentioned_in.parent / name).exists()


def test_every_named_file_exists() -> None:
    files = _texts()
    basenames = {p.name for p in files}
    missing = []
    for path in files:
        if path == Path(__file__).resolve():  # its examples of missing files
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        for pattern in (MARKDOWN, REPO_PATH):
            for match in pattern.finditer(text):
                if not _exists(match.group(1), path, basenames):
                    line = text.count("\n", 0, match.start()) + 1
                    missing.append(f"{path.relative_to(ROOT)}:{line}: {match.group(1)}")
    assert missing == []


def test_the_checker_sees_a_missing_file() -> None:
    basenames = {p.name for p in _texts()}
    here = ROOT / "README.md"
    assert not _exists("DESIGN.md", here, basenames)
    assert not _exists("docs/nowhere.md", here, basenames)
    assert _exists("docs/itglue-api.md", here, basenames)
    assert _exists("../config/example.toml", ROOT / "docs" / "admin.md", basenames)
    assert MARKDOWN.search("see itglue-api.md section 3").group(1) == "itglue-api.md"
