"""Plugin secrets: an environment variable, else the keyring; never in the configuration.

Every value handed out is registered with the log redaction filter first.
"""

from __future__ import annotations

import os

import keyring

from itglue_common import APP_NAME

from .errors import PermanentError
from .logs import register_secret


def read_secret(user: str, key: str, env: str | None, owner: str) -> str:
    """The variable ``env`` when set, else keyring service ``itglue-ingest`` user ``user``.

    :param owner: who asks, for the error message (``source 'mail'``).
    :raises PermanentError: neither is set; the message says how to set it.
    """
    if env:
        value = os.environ.get(env)
        if value:
            register_secret(value)
            return value
    try:
        value = keyring.get_password(APP_NAME, user)
    except Exception as e:  # no usable keyring backend
        value = None
        why = f" (keyring unavailable: {type(e).__name__})"
    else:
        why = ""
    if value:
        register_secret(value)
        return value
    hint = f"set the environment variable {env}, or " if env else ""
    raise PermanentError(
        f"{owner}: secret {key!r} is not set{why}; {hint}store it with"
        f" `keyring set {APP_NAME} {user}`"
    )
