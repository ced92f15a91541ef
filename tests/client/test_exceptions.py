"""Lenient parsing of every IT Glue error variant (docs/itglue-api.md section 4) and the tree."""

from __future__ import annotations

import pytest

from core_client import exceptions as ex
from core_client.exceptions import error_for_status, parse_errors, parse_status


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        # int status, pointer without slash, detail string (powershellwrapper #102/#72)
        (
            {
                "errors": [
                    {
                        "status": 422,
                        "title": "Unprocessable Entity",
                        "detail": "Request contains invalid trait keys",
                        "source": {"pointer": "data/attributes/traits"},
                    }
                ]
            },
            [("/data/attributes/traits", "Request contains invalid trait keys")],
        ),
        # detail as a list (#96)
        (
            {
                "errors": [
                    {
                        "source": {"pointer": "/data/attributes/flexible-asset-traits.url"},
                        "detail": ["can't be blank"],
                        "title": "Unprocessable Entity",
                        "status": 422,
                    }
                ]
            },
            [("/data/attributes/flexible-asset-traits.url", "can't be blank")],
        ),
        # detail string with leading slash (automation #38)
        (
            {
                "errors": [
                    {
                        "source": {"pointer": "/data/attributes/configuration-type"},
                        "detail": "must exist",
                        "title": "Unprocessable Entity",
                        "status": 422,
                    }
                ]
            },
            [("/data/attributes/configuration-type", "must exist")],
        ),
        # no detail: title used
        (
            {
                "errors": [
                    {
                        "status": 422,
                        "title": "Valid organization_id is required",
                        "source": {"pointer": "data/attributes/organization_id"},
                    }
                ]
            },
            [("/data/attributes/organization_id", "Valid organization_id is required")],
        ),
        # symbolic status string
        (
            {
                "errors": [
                    {
                        "status": "unprocessable_entity",
                        "title": "bulk action not allowed for Flexible Asset using this route",
                        "source": {"pointer": "data"},
                    }
                ]
            },
            [("/data", "bulk action not allowed for Flexible Asset using this route")],
        ),
        # several details in a list, several errors
        (
            {"errors": [{"detail": ["a", "b"], "source": {"pointer": "x"}}, {"title": "t2"}]},
            [("/x", "a; b"), ("", "t2")],
        ),
        # odd shapes: single object, plain string, parameter source, garbage
        ({"errors": {"detail": "single"}}, [("", "single")]),
        ({"errors": "plain"}, [("", "plain")]),
        (
            {"errors": [{"source": {"parameter": "page[size]"}, "detail": "bad"}]},
            [("/page[size]", "bad")],
        ),
        ({"errors": [None, 3, "text"]}, [("", "text")]),
        ({"data": []}, []),
        (None, []),
        ("<html>502 Bad Gateway</html>", []),
    ],
)
def test_parse_errors_variants(body: object, expected: list[tuple[str, str]]) -> None:
    assert parse_errors(body) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (422, 422),
        ("422", 422),
        ("unprocessable_entity", 422),
        ("Unprocessable Entity", 422),
        ("not_found", 404),
        ("weird", None),
        (None, None),
        (True, None),
    ],
)
def test_parse_status(value: object, expected: int | None) -> None:
    assert parse_status(value) == expected


@pytest.mark.parametrize(
    ("status", "cls", "transient"),
    [
        (400, ex.ValidationError, False),
        (401, ex.AuthenticationError, False),
        (403, ex.AuthenticationError, False),
        (404, ex.NotFoundError, False),
        (413, ex.PayloadTooLargeError, False),
        (422, ex.ValidationError, False),
        (429, ex.RateLimitError, True),
        (500, ex.ServerError, True),
        (503, ex.ServerError, True),
        (504, ex.ServerError, True),
        (418, ex.APIError, False),
    ],
)
def test_error_for_status(status: int, cls: type[ex.APIError], transient: bool) -> None:
    err = error_for_status(
        status,
        {"errors": [{"detail": "d", "source": {"pointer": "p"}}]},
        request_id="abc123",
        method="POST",
        path="/configurations",
    )
    assert type(err) is cls
    assert err.transient is transient
    assert err.status == status
    assert err.errors == [("/p", "d")]
    assert "abc123" in str(err) and "POST /configurations" in str(err)
    assert f"HTTP {status}" in str(err)
    assert isinstance(err, ex.APIError) and isinstance(err, ex.ITGlueError)


def test_symbolic_status_without_title_keeps_the_word() -> None:
    err = error_for_status(422, {"errors": [{"status": "unprocessable_entity"}]})
    assert err.errors == [("", "unprocessable_entity")]


def test_tree_and_transient_flags() -> None:
    assert issubclass(ex.MissingAPIKeyError, ex.ConfigurationError)
    assert issubclass(ex.InsecureURLError, ex.ConfigurationError)
    assert issubclass(ex.ConfigurationError, ex.ITGlueError)
    for cls in (
        ex.TransportError,
        ex.CircuitOpenError,
        ex.AmbiguousOutcomeError,
        ex.ClientClosedError,
    ):
        assert issubclass(cls, ex.ITGlueError) and not issubclass(cls, ex.APIError)
    assert ex.TransportError("x").transient is True
    assert ex.TransportError("x", transient=False).transient is False
    assert ex.CircuitOpenError("x").transient is True
    assert ex.AmbiguousOutcomeError("x").transient is True
    assert ex.ConfigurationError("x").transient is False
    assert ex.MissingAPIKeyError("x").transient is False
    # the tree is drawn in the module docstring
    doc = ex.__doc__ or ""
    for name in ex.__all__:
        if name[0].isupper():
            assert name in doc, name


def test_repr_holds_no_response_objects() -> None:
    err = error_for_status(
        401,
        {"errors": [{"status": "401", "title": "Unauthorized", "source": {"pointer": "id"}}]},
        request_id="r1",
    )
    assert repr(err).startswith("AuthenticationError(status=401, request_id='r1'")
    assert set(vars(err)) == {"message", "status", "errors", "request_id", "method", "path"}
