"""Properties of the routing rule matcher (``plugins.routing``), in-process.

Any ``[routing]`` table is either valid or a configuration error naming the key (never a
traceback, even for a regular expression ``re`` itself cannot compile); any record,
whatever its fields hold, is matched without raising; the first matching rule wins,
always the same one; matching ignores case as documented.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from pydantic import ValidationError

from pipeline import DocumentRecord, Rejected
from pipeline.runner import Engine
from pipeline.settings import ConfigError, parse_settings
from plugins.routing import (
    MATCH_FIELDS,
    Router,
    RoutingOptions,
    RoutingRule,
    expand,
    match_rule,
)

# text a regular expression is made of, so that invalid ones come up as often as valid
REGEX_TEXT = st.text(st.sampled_from(list("()[]{}*+?|\\^$.-,:<>=!Pia0123456789 ")), max_size=30)
PATTERNS = st.one_of(
    REGEX_TEXT,
    st.text(max_size=20),
    st.sampled_from(["a{99999999999}", "(" * 2000 + ")" * 2000, "(?<=a+)b", "(?P<n>x)(?P=m)"]),
)
FIELDS = st.one_of(
    st.sampled_from([*MATCH_FIELDS, "metadata.from", "metadata.a.b"]), st.text(max_size=12)
)
TOML_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=10)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
RULES = st.fixed_dictionaries(
    {},
    optional={
        "name": st.one_of(st.text(max_size=10), TOML_VALUES),
        "source": st.one_of(st.text(max_size=10), TOML_VALUES),
        "match": st.one_of(st.dictionaries(FIELDS, PATTERNS, max_size=3), TOML_VALUES),
        "organization": st.one_of(st.text(max_size=10), TOML_VALUES),
        "target": st.one_of(
            st.fixed_dictionaries(
                {},
                optional={
                    "kind": st.sampled_from(["document", "attachment", "other"]),
                    "resource_type": st.sampled_from(["configurations", "contacts", "passwords"]),
                    "resource_id": st.text(max_size=8),
                    "resource_name": st.text(max_size=8),
                },
            ),
            TOML_VALUES,
        ),
        "unknown": TOML_VALUES,
    },
)


@given(st.lists(RULES, max_size=4), st.dictionaries(st.text(max_size=10), TOML_VALUES, max_size=2))
@example([{"match": {"name": "a{99999999999}"}}], {})  # OverflowError in re.compile
@example([{"match": {"name": "(" * 2000 + ")" * 2000}}], {})  # RecursionError in re.compile
def test_any_routing_table_is_valid_or_a_validation_error(
    rules: list[Any], extra: dict[str, Any]
) -> None:
    try:
        RoutingOptions.model_validate({"rules": rules, **extra})
    except ValidationError as e:
        assert all(err["loc"] for err in e.errors())  # every problem names its key


def test_an_uncompilable_regex_is_a_config_error_naming_the_key() -> None:
    """Through the engine, as ``once``/``run`` build it: ConfigError, not OverflowError."""
    settings = parse_settings(
        {
            "pipeline": {"transforms": ["route"], "sink": "itglue"},
            "routing": {"rules": [{"match": {"name": "a{99999999999}"}}]},
        }
    )
    with pytest.raises(ConfigError, match=r"rules\.0\.match.*match\.name: invalid regular"):
        Engine(settings)


# ----------------------------------------------------------------------------- matching

ANY_TEXT = st.text(max_size=40)
METADATA = st.dictionaries(st.sampled_from(["from", "a", "b"]), TOML_VALUES, max_size=3)


def record(name: str, ref: str, metadata: dict[str, Any], **kw: Any) -> DocumentRecord:
    return DocumentRecord(source="src", source_ref=ref, name=name, metadata=metadata, **kw)


def valid_rules(patterns: list[tuple[str, str]]) -> RoutingRule | None:
    try:
        return RoutingRule.model_validate({"match": dict(patterns)})
    except ValidationError:
        return None


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["name", "source_ref", "metadata.from", "metadata.a.b"]), PATTERNS
        ),
        max_size=3,
    ),
    ANY_TEXT,
    ANY_TEXT,
    METADATA,
)
def test_matching_any_record_never_raises_and_is_deterministic(
    patterns: list[tuple[str, str]], name: str, ref: str, metadata: dict[str, Any]
) -> None:
    rule = valid_rules(patterns)
    if rule is None:
        return
    rec = record(name, ref, metadata)
    first = match_rule(rule, rec)
    assert match_rule(rule, rec) == first
    if first is not None:
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in first.items())


ASCII = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=12)
LITERAL_RULES = st.lists(
    st.dictionaries(st.sampled_from(["name", "source_ref", "metadata.from"]), ASCII, max_size=2),
    max_size=6,
)


def literal_matches(literals: dict[str, str], values: dict[str, str]) -> bool:
    """The oracle: every literal occurs in its field, ignoring ASCII case."""
    return all(lit.lower() in values[f].lower() for f, lit in literals.items())


class _OneInstance:
    """The part of the engine context the router asks when records carry their
    organization's id: the instance (a single ``[itglue]`` table: None). No cache lookup
    happens, so nothing else of the context is needed."""

    def instance_of(self, name: str | None) -> str | None:
        assert name is None
        return None


@given(LITERAL_RULES, ASCII, ASCII, ASCII)
def test_the_first_matching_rule_wins_ignoring_case(
    rule_literals: list[dict[str, str]], name: str, ref: str, sender: str
) -> None:
    rules = [
        {
            "match": {f: re.escape(lit) for f, lit in literals.items()},
            "target": {
                "kind": "attachment",
                "resource_type": "configurations",
                "resource_id": str(i),
            },
        }
        for i, literals in enumerate(rule_literals)
    ]
    router = Router(RoutingOptions.model_validate({"rules": rules}), context=_OneInstance())  # type: ignore[arg-type]
    values = {"name": name, "source_ref": ref, "metadata.from": sender}
    expected = next(
        (i for i, lit in enumerate(rule_literals) if literal_matches(lit, values)), None
    )
    for rec in (
        record(name, ref, {"from": sender}, organization_id="1"),
        record(name.swapcase(), ref.upper(), {"from": sender.lower()}, organization_id="1"),
    ):
        route = router.route(rec)
        chosen = int(route.target.resource_id) if route.target.resource_id else None
        assert chosen == expected


@given(st.text(max_size=40), st.dictionaries(st.text(max_size=6), st.text(max_size=6)))
@example("{0.__class__}{__class__}", {})
def test_expand_only_fills_named_groups(template: str, groups: dict[str, str]) -> None:
    try:
        out = expand(template, groups)
    except Rejected as e:
        assert "has no matching regex group" in e.reason
        return
    for key in re.findall(r"\{(\w+)\}", template):
        assert key in groups
    assert "__class__" not in out or "__class__" in template.replace("{__class__}", "")
