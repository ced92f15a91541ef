"""Section HTML allowlist: the one implementation is :mod:`itglue_common.sanitize`
(the export command cleans what it writes with it too)."""

from itglue_common.sanitize import (
    IMAGE_ATTRIBUTES,
    SAFE_ATTRIBUTES,
    SAFE_TAGS,
    URL_SCHEMES,
    sanitize_html,
)

__all__ = ["IMAGE_ATTRIBUTES", "SAFE_ATTRIBUTES", "SAFE_TAGS", "URL_SCHEMES", "sanitize_html"]
