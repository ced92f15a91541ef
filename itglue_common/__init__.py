"""Small helpers shared by the client, the pipeline and plugins; each is defined here once.

Part of the public API for plugins. The dependency rule: ``core_client``, ``pipeline``
and ``plugins`` may import ``itglue_common``; ``itglue_common`` imports none of them (nor
``itglue_emulator``), so it stays a leaf anyone can use. ``tests/common`` checks both.
"""

from __future__ import annotations

from .backoff import backoff_delay, exponential_delay
from .escaping import escape_controls, escape_markup, json_safe
from .filenames import safe_file_name
from .net import is_loopback_host, proxies_for
from .retry_after import parse_retry_after
from .sanitize import sanitize_html
from .sizes import human_size

# The application's one name: the platformdirs folder, the keyring service, the
# distribution and the command share it, so changing it here changes them together.
APP_NAME = "itglue-ingest"

__all__ = [
    "APP_NAME",
    "backoff_delay",
    "escape_controls",
    "escape_markup",
    "exponential_delay",
    "human_size",
    "is_loopback_host",
    "json_safe",
    "parse_retry_after",
    "proxies_for",
    "safe_file_name",
    "sanitize_html",
]
