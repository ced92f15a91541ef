"""The ``auto`` matcher: which organization a document's text names.

Every IT Glue organization is a candidate by its name, plus what ``[routing.auto]`` adds
per organization: aliases, e-mail/web domains and a ``match`` pattern read like
paperless-ngx's matching algorithms (``any`` word, ``all`` words, a ``literal`` phrase, a
``regex``, ``fuzzy``). Names, aliases and phrases are found as whole words,
case-insensitively, with any whitespace between words (OCR breaks lines anywhere).

Each candidate scores 0..1 (1 for an exact find; fuzzy finds score their similarity) and
counts how often it was found. The pick is the highest score at or above ``min_score``;
ties go to the most finds, then the earliest find in the text, then the name in
alphabetical order, so the same text always lands in the same organization. Pure: the
router (``plugins.routing``) supplies the organization names and the text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from rapidfuzz import fuzz

Algorithm = Literal["any", "all", "literal", "regex", "fuzzy"]

#: fuzzy matching reads the start of the text (letterheads, addresses, subject lines):
#: its cost grows with the text, and a 200-page manual does not name its client on page 150
FUZZY_TEXT_CHARS = 20_000


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AutoOrganization(_Strict):
    """``[routing.auto.organizations."<IT Glue name>"]``: more ways to recognise one."""

    aliases: list[str] = Field(default_factory=list)  # other names ("ACME", "Acme Inc.")
    domains: list[str] = Field(default_factory=list)  # e-mail / web domains ("acme.example")
    match: str | None = None  # a pattern read by ``algorithm``
    algorithm: Algorithm = "any"

    @field_validator("domains")
    @classmethod
    def _domains(cls, value: list[str]) -> list[str]:
        cleaned = [d.strip().lower().lstrip("@").removeprefix("www.") for d in value]
        for domain in cleaned:
            if not re.fullmatch(r"[a-z0-9-]+(\.[a-z0-9-]+)+", domain):
                raise ValueError(f"{domain!r} is not a domain name (like example.com)")
        return cleaned

    @field_validator("match")
    @classmethod
    def _pattern(cls, value: str | None) -> str | None:
        return value.strip() or None if value is not None else None


class AutoOptions(_Strict):
    """``[routing.auto]``: pick the organization the document's text names."""

    enabled: bool = False
    names: Literal["literal", "fuzzy"] = "literal"  # how names and aliases are found
    min_score: float = Field(default=0.9, ge=0.0, le=1.0)
    min_name_length: int = Field(default=3, ge=1)  # shorter names/aliases ("IT") are not sought
    include_primary: bool = False  # your own (primary) organization is on every letterhead
    ignore: list[str] = Field(default_factory=list)  # organizations never picked by text
    organizations: dict[str, AutoOrganization] = Field(default_factory=dict)

    def check_patterns(self) -> None:
        """Raise ValueError for a ``regex`` that does not compile (at configuration load)."""
        for name, org in self.organizations.items():
            if org.algorithm == "regex" and org.match:
                try:
                    re.compile(org.match, re.IGNORECASE)
                except (re.error, OverflowError, RecursionError) as e:
                    raise ValueError(
                        f"organizations.{name!r}.match: invalid regular expression:"
                        f" {str(e) or type(e).__name__}"
                    ) from None


@dataclass(frozen=True)
class Find:
    """How well one way of naming an organization was found in a text."""

    score: float
    count: int
    first: int  # offset of the first find (fuzzy: of the best alignment)
    how: str  # 'alias "ACME"', 'domain acme.example', ...


@dataclass(frozen=True)
class Pick:
    """The organization the text names, and why."""

    organization: str
    find: Find
    runner_up: tuple[str, Find] | None

    @property
    def reason(self) -> str:
        f = self.find
        text = f"auto: {self.organization!r} named in the text: {f.how} (score {f.score:.2f})"
        if self.runner_up is not None:
            other, o = self.runner_up
            text += f"; next best {other!r} (score {o.score:.2f}, {o.count}x)"
        return text


# --------------------------------------------------------------------------- finding


def _phrase(term: str) -> re.Pattern[str]:
    """``term`` as a whole-word, case-insensitive pattern, any whitespace between words."""
    words = [re.escape(w) for w in term.split()]
    return re.compile(r"(?<!\w)" + r"\s+".join(words) + r"(?!\w)", re.IGNORECASE)


def _domain(domain: str) -> re.Pattern[str]:
    """``domain`` in an e-mail address or a host name (sub-domains too), not inside a
    longer name ("notacme.example" is not "acme.example")."""
    return re.compile(
        r"(?<![\w.-])(?:[\w.+-]+@)?(?:[\w-]+\.)*" + re.escape(domain) + r"(?![\w-])", re.I
    )


def _found(pattern: re.Pattern[str], text: str, how: str) -> Find | None:
    starts = [m.start() for m in pattern.finditer(text)]
    return Find(1.0, len(starts), starts[0], how) if starts else None


def _words(match: str) -> list[str]:
    """paperless-ngx's split: words, with "quoted phrases" kept together."""
    return [(q or w).strip() for q, w in re.findall(r'"([^"]+)"|(\S+)', match) if (q or w).strip()]


_PUNCTUATION = re.compile(r"[^\w\s]")


def _fuzzy(term: str, text: str, how: str, min_score: float) -> Find | None:
    needle = _PUNCTUATION.sub("", term).casefold()
    haystack = _PUNCTUATION.sub("", text[:FUZZY_TEXT_CHARS]).casefold()
    if not needle.strip():
        return None
    found = fuzz.partial_ratio_alignment(needle, haystack, score_cutoff=min_score * 100)
    if found is None:
        return None
    return Find(round(found.score / 100, 4), 1, found.dest_start, how)


def find_pattern(match: str, algorithm: Algorithm, text: str, min_score: float) -> Find | None:
    """``match`` read by ``algorithm`` (paperless-ngx's meanings) in ``text``."""
    if algorithm == "regex":
        return _found(re.compile(match, re.IGNORECASE), text, f"regex {match!r}")
    if algorithm == "fuzzy":
        return _fuzzy(match, text, f"fuzzy {match!r}", min_score)
    if algorithm == "literal":
        return _found(_phrase(match), text, f"phrase {match!r}")
    finds = [(word, _found(_phrase(word), text, "")) for word in _words(match)]
    hits = [(word, f) for word, f in finds if f is not None]
    if not hits or (algorithm == "all" and len(hits) < len(finds)):
        return None
    label = "all of" if algorithm == "all" else "any of"
    return Find(
        1.0,
        sum(f.count for _, f in hits),
        min(f.first for _, f in hits),
        f"{label} {match!r} ({', '.join(repr(w) for w, _ in hits)})",
    )


def best_find(
    name: str, extra: AutoOrganization | None, text: str, options: AutoOptions
) -> Find | None:
    """The best of the ways ``name`` (and its configured extras) is found in ``text``."""
    finds: list[Find] = []
    terms = [("name", name)] + [("alias", a) for a in (extra.aliases if extra else [])]
    for kind, term in terms:
        if len(term.strip()) < options.min_name_length:
            continue
        if options.names == "fuzzy":
            found = _fuzzy(term, text, f"{kind} {term!r} (fuzzy)", options.min_score)
        else:
            found = _found(_phrase(term), text, f"{kind} {term!r}")
        if found is not None:
            finds.append(found)
    if extra is not None:
        for domain in extra.domains:
            found = _found(_domain(domain), text, f"domain {domain}")
            if found is not None:
                finds.append(found)
        if extra.match:
            found = find_pattern(extra.match, extra.algorithm, text, options.min_score)
            if found is not None:
                finds.append(found)
    if not finds:
        return None
    how = ", ".join(f"{f.how} {f.count}x" for f in finds)
    return Find(
        max(f.score for f in finds), sum(f.count for f in finds), min(f.first for f in finds), how
    )


def pick_organization(
    text: str, names: Iterable[str], options: AutoOptions, primary: Iterable[str] = ()
) -> Pick | None:
    """The organization ``text`` names best (see the module docstring), or None."""
    if not text.strip():
        return None
    extras: Mapping[str, AutoOrganization] = {
        k.casefold(): v for k, v in options.organizations.items()
    }
    skip = {n.casefold() for n in options.ignore}
    if not options.include_primary:
        skip |= {n.casefold() for n in primary}
    candidates: dict[str, str] = {}  # casefolded -> spelling (IT Glue's wins)
    for name in [*options.organizations, *names]:
        if name and name.strip():
            candidates[name.strip().casefold()] = name.strip()
    ranked: list[tuple[str, Find]] = []
    for key, name in candidates.items():
        if key in skip:
            continue
        found = best_find(name, extras.get(key), text, options)
        if found is not None and found.score >= options.min_score:
            ranked.append((name, found))
    if not ranked:
        return None
    ranked.sort(key=lambda nf: (-nf[1].score, -nf[1].count, nf[1].first, nf[0].casefold()))
    return Pick(ranked[0][0], ranked[0][1], ranked[1] if len(ranked) > 1 else None)
