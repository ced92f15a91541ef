"""Content routing: ``match = { text = ... }`` rules and the ``[routing.auto]`` matcher.

The matcher is pure (unit tests); the router's use of it, the order against rules, the
source and the fallback, and the reason it records run against the emulator.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from pipeline import DocumentRecord, TransientError
from plugins.routing import RoutingOptions
from plugins.routing.auto import AutoOptions, pick_organization
from tests.plugins.test_routing_transform import org_id, route_transform

NAMES = ["Acme Corp", "Globex", "Initech", "Umbrella Corporation"]


def auto(**kw: Any) -> AutoOptions:
    return AutoOptions.model_validate({"enabled": True, **kw})


def picked(text: str, options: AutoOptions | None = None, **kw: Any) -> str | None:
    pick = pick_organization(text, kw.pop("names", NAMES), options or auto(), **kw)
    return None if pick is None else pick.organization


# --------------------------------------------------------------------------- the matcher


def test_a_name_is_found_as_whole_words_across_line_breaks() -> None:
    assert picked("Invoice for ACME\n  corp, due in 30 days") == "Acme Corp"
    assert picked("Acme Corporate Services") is None  # "Corp" is not "Corporate"
    assert picked("the Globexian empire") is None
    assert picked("") is None


def test_aliases_and_mail_domains_name_an_organization() -> None:
    initech = {"aliases": ["INTC"], "domains": ["@initech.example"]}
    options = auto(organizations={"Initech": initech})
    assert picked("Ticket from peter@mail.initech.example", options) == "Initech"
    assert picked("see https://www.initech.example/tps", options) == "Initech"
    assert picked("ref INTC-42", options) == "Initech"
    assert picked("bob@notinitech.example", options) is None  # not inside a longer domain
    with pytest.raises(ValidationError, match="not a domain name"):
        auto(organizations={"Initech": {"domains": ["initech"]}})


@pytest.mark.parametrize(
    ("algorithm", "match", "text", "found"),
    [
        ("any", 'tps "cover sheet"', "Did you get the memo about the cover  sheet?", True),
        ("any", 'tps "cover sheet"', "a cover for the sheet", False),
        ("all", "stapler basement", "My stapler is in the basement", True),
        ("all", "stapler basement", "My stapler", False),
        ("literal", "red stapler", "the Red\nStapler", True),
        ("literal", "red stapler", "stapler, red", False),
        ("regex", r"TPS-\d{4}", "report TPS-2024 attached", True),
        ("fuzzy", "Milton Waddams", "signed: Miltn Wadams", True),
        ("fuzzy", "Milton Waddams", "signed: Bill Lumbergh", False),
    ],
)
def test_the_match_pattern_reads_like_paperless_ngx(
    algorithm: str, match: str, text: str, found: bool
) -> None:
    options = auto(organizations={"Initech": {"match": match, "algorithm": algorithm}})
    assert (picked(text, options, names=[]) == "Initech") is found


def test_fuzzy_names_find_ocr_misspellings_above_the_minimum_score() -> None:
    text = "Umbrela Corporaton - quarterly report"
    assert picked(text) is None  # literal names need the exact words
    assert picked(text, auto(names="fuzzy")) == "Umbrella Corporation"
    assert picked(text, auto(names="fuzzy", min_score=0.99)) is None


def test_ties_are_broken_by_finds_then_position_then_name() -> None:
    assert picked("Globex and Initech. Initech again.") == "Initech"  # more finds
    assert picked("Globex and Initech.") == "Globex"  # same count: named first
    both = auto(organizations={"Globex": {"aliases": ["GX1"]}, "Initech": {"aliases": ["GX1"]}})
    for _ in range(3):  # an alias two organizations share: alphabetical, every time
        assert picked("GX1", both, names=[]) == "Globex"


def test_own_primary_ignored_and_too_short_names_are_never_picked() -> None:
    text = "MSP Ltd - Managed services. Serving Globex since 2019."
    names = [*NAMES, "MSP Ltd", "IT"]
    assert picked(text, names=names, primary=["MSP Ltd"]) == "Globex"
    assert picked("MSP Ltd newsletter", names=names, primary=["MSP Ltd"]) is None
    assert picked(text, auto(include_primary=True), names=names, primary=["MSP Ltd"]) == "MSP Ltd"
    assert picked("Globex newsletter", auto(ignore=["globex"])) is None
    assert picked("the IT department", names=names) is None  # shorter than min_name_length


def test_the_reason_says_what_was_found_and_the_runner_up() -> None:
    options = auto(organizations={"Acme Corp": {"domains": ["acme.example"]}})
    pick = pick_organization("ACME Corp, ops@acme.example; cc Globex", NAMES, options)
    assert pick is not None
    assert pick.reason == (
        "auto: 'Acme Corp' named in the text: name 'Acme Corp' 1x, domain acme.example 1x"
        " (score 1.00); next best 'Globex' (score 1.00, 1x)"
    )


def test_a_bad_regex_is_refused_when_the_configuration_loads() -> None:
    with pytest.raises(ValidationError, match="invalid regular expression"):
        RoutingOptions.model_validate(
            {"auto": {"organizations": {"X": {"match": "([", "algorithm": "regex"}}}}
        )
    with pytest.raises(ValidationError, match=r"match\.text: invalid regular expression"):
        RoutingOptions.model_validate({"rules": [{"match": {"text": "(["}, "organization": "X"}]})


# --------------------------------------------------------------------------- the router


def rec(name: str, text: str | None = None, **kw: Any) -> DocumentRecord:
    kw.setdefault("source", "scans")
    metadata = {"extract_text": text} if text is not None else {}
    return DocumentRecord(name=name, source_ref=name, metadata=metadata, **kw)


def test_the_router_uses_rules_then_the_source_then_the_text_then_the_fallback(
    contexts, demo_emulator
) -> None:
    routing = {
        "fallback_organization": "Umbrella Corporation",
        "rules": [{"name": "tps", "match": {"text": r"TPS report"}, "organization": "Initech"}],
        "auto": {"enabled": True},
    }
    t = route_transform(contexts(routing=routing))

    by_rule = t.apply(rec("a", "Globex: the TPS report"))
    by_source = t.apply(rec("b", "Globex quarterly", organization="Acme Corp"))
    by_text = t.apply(rec("c", "Quarterly review for GLOBEX"))
    by_fallback = t.apply(rec("d", "nobody we know"))
    no_text = t.apply(rec("e"))

    assert by_rule.organization == "Initech"
    assert by_rule.metadata["routing"]["reason"] == "rule 1 (tps): text~'TPS report'"
    assert by_source.organization == "Acme Corp"
    assert by_source.metadata["routing"]["reason"] == "the source's organization"
    assert by_text.organization == "Globex"
    assert by_text.organization_id == org_id(demo_emulator, "Globex")
    assert by_text.metadata["routing"]["reason"].startswith("auto: 'Globex' named in the text")
    for out in (by_fallback, no_text):
        assert out.organization == "Umbrella Corporation"
        assert out.metadata["routing"]["reason"].startswith("fallback_organization")


def test_auto_is_off_unless_enabled(contexts, demo_emulator) -> None:
    t = route_transform(contexts(routing={"fallback_organization": "Initech"}))
    assert t.apply(rec("a", "Globex quarterly")).organization == "Initech"


def test_without_any_organization_list_the_record_waits_instead_of_the_fallback(
    contexts, demo_emulator
) -> None:
    demo_emulator.set_faults(
        errors=[{"rate": 1.0, "status": 503, "methods": ["GET"], "path_prefix": "/organizations"}]
    )
    routing = {"fallback_organization": "Initech", "auto": {"enabled": True}}
    t = route_transform(contexts(routing=routing))
    with pytest.raises(TransientError, match="could not list organizations"):
        t.apply(rec("a", "Quarterly review for Globex"))
