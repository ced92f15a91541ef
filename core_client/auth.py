"""Where the API key comes from: explicit argument, environment variable, or keyring.

Order: an explicit ``api_key`` wins; then ``api_key_env`` (when given, the variable
must be set: servers and CI configure it on purpose, so silently falling back to a
keyring entry would hide a mistake); then the keyring entry (service
``itglue-ingest``, username = the instance name). A keyring that is missing or broken
(``NoKeyringError``/``KeyringError``, common on headless servers) is treated like an
empty one, and the error message says how to provide the key instead.

The key is returned wrapped in :class:`~core_client.redaction.Secret` so it never
prints itself. No function here logs or formats the key.
"""

from __future__ import annotations

import logging
import os
import re

import keyring
import keyring.errors

from itglue_common import APP_NAME

from .exceptions import ConfigurationError, MissingAPIKeyError
from .redaction import Secret

DEFAULT_ENV = "ITGLUE_API_KEY"

log = logging.getLogger("itglue_ingest.client.auth")

# header values may not contain control characters or leading/trailing whitespace;
# requests would otherwise raise InvalidHeader with the value (the key!) in its message
_VALID_KEY = re.compile(r"^[\x21-\x7e]+$")


def _how_to_set(instance: str, env: str | None) -> str:
    var = env or DEFAULT_ENV
    return (
        f"run `itglue-ingest auth set --instance {instance}` (stores it in the system "
        f"keyring), or set the environment variable {var} and configure "
        f'api_key_env = "{var}"'
    )


def validate_key(value: str | Secret) -> Secret:
    """The stripped key as a :class:`Secret`; refuses values that cannot be a header.

    No local variable of this (or any) function holds the raw key when an exception
    leaves it, so even a traceback rendered with local variables cannot show it.
    """
    wrapped = value if isinstance(value, Secret) else Secret(value)
    del value
    cleaned = Secret(wrapped.reveal().strip())
    if not cleaned.reveal():
        raise MissingAPIKeyError("the API key is empty")
    if not _VALID_KEY.match(cleaned.reveal()):
        # never echo the value: it is (almost) the key
        raise ConfigurationError(
            "the API key contains whitespace or control characters; set it again"
        )
    return cleaned


def _keyring_get(instance: str) -> tuple[Secret | None, str | None]:
    """(key, problem): problem says why the keyring could not be read."""
    try:
        found = keyring.get_password(APP_NAME, instance)
    except keyring.errors.NoKeyringError:
        return None, "no system keyring is available"
    except keyring.errors.KeyringError as e:
        return None, f"the keyring failed ({type(e).__name__})"
    return (Secret(found) if found else None), None


def _env(name: str) -> Secret | None:
    return Secret(os.environ[name]) if os.environ.get(name) else None


def get_api_key(
    instance: str = "default",
    *,
    api_key: str | Secret | None = None,
    api_key_env: str | None = None,
) -> Secret:
    """The key for ``instance``; raises :class:`MissingAPIKeyError` saying how to set it."""
    explicit = Secret(api_key) if isinstance(api_key, str) else api_key
    del api_key
    if explicit is not None:
        return validate_key(explicit)
    if api_key_env:
        from_env = _env(api_key_env)
        if from_env is not None:
            return validate_key(from_env)
        raise MissingAPIKeyError(
            f"no IT Glue API key for instance {instance!r}: the environment variable "
            f"{api_key_env} is not set; {_how_to_set(instance, api_key_env)}"
        )
    stored, problem = _keyring_get(instance)
    if stored is not None:
        return validate_key(stored)
    fallback = _env(DEFAULT_ENV)
    if fallback is not None:
        return validate_key(fallback)
    where = f"({problem}) " if problem else "in the keyring "
    raise MissingAPIKeyError(
        f"no IT Glue API key for instance {instance!r} {where}and {DEFAULT_ENV} is not "
        f"set; {_how_to_set(instance, None)}"
    )


def set_api_key(instance: str, value: str) -> None:
    """Store ``value`` in the keyring for ``instance`` (validated first)."""
    wrapped = Secret(value)
    del value
    secret = validate_key(wrapped)
    try:
        keyring.set_password(APP_NAME, instance, secret.reveal())
    except keyring.errors.NoKeyringError:
        raise ConfigurationError(
            "no system keyring is available to store the key; set an environment "
            f"variable instead (e.g. {DEFAULT_ENV}) and configure api_key_env"
        ) from None
    except keyring.errors.KeyringError as e:
        raise ConfigurationError(f"the keyring refused the key ({type(e).__name__})") from None
    log.info("API key stored in the keyring", extra={"instance": instance})


def delete_api_key(instance: str) -> bool:
    """Remove the instance's keyring entry; False when there was none."""
    try:
        keyring.delete_password(APP_NAME, instance)
    except keyring.errors.PasswordDeleteError:
        return False
    except keyring.errors.NoKeyringError:
        return False
    except keyring.errors.KeyringError as e:
        raise ConfigurationError(f"the keyring failed ({type(e).__name__})") from None
    log.info("API key deleted from the keyring", extra={"instance": instance})
    return True


def api_key_status(
    instance: str = "default", *, api_key_env: str | None = None
) -> dict[str, object]:
    """Where a key would come from, without revealing it.

    ``{"instance", "configured": bool, "source": "env:NAME"|"keyring"|None,
    "keyring_available": bool, "problem": str|None}``
    """
    status: dict[str, object] = {
        "instance": instance,
        "configured": False,
        "source": None,
        "keyring_available": True,
        "problem": None,
    }
    if api_key_env:
        if os.environ.get(api_key_env):
            status.update(configured=True, source=f"env:{api_key_env}")
        else:
            status["problem"] = f"{api_key_env} is not set"
        return status
    stored, problem = _keyring_get(instance)
    if problem:
        status.update(keyring_available=False, problem=problem)
    if stored is not None:
        status.update(configured=True, source="keyring")
    elif os.environ.get(DEFAULT_ENV):
        status.update(configured=True, source=f"env:{DEFAULT_ENV}")
    return status
