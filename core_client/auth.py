"""Where the API key comes from: explicit argument, a file, an environment variable, or keyring.

Order: an explicit ``api_key`` wins; then ``api_key_file`` or ``api_key_env`` (when
given, it must work: servers and CI configure it on purpose, so silently falling back
to a keyring entry would hide a mistake); then the keyring entry (service
``itglue-ingest``, username = the instance name). A keyring that is missing or broken
(``NoKeyringError``/``KeyringError``, common on headless servers) is treated like an
empty one, and the error message says how to provide the key instead: on a machine
without a usable keyring backend it advises the file or the variable, not ``auth set``.
A key file (systemd credentials, container secrets) must be readable by its owner only.

The key is returned wrapped in :class:`~core_client.redaction.Secret` so it never
prints itself. No function here logs or formats the key.
"""

from __future__ import annotations

import logging
import os
import re
import stat
from pathlib import Path

import keyring
import keyring.backends.fail
import keyring.backends.null
import keyring.errors

from itglue_common import APP_NAME

from .exceptions import ConfigurationError, MissingAPIKeyError
from .redaction import Secret

DEFAULT_ENV = "ITGLUE_API_KEY"

log = logging.getLogger("itglue_ingest.client.auth")

# header values may not contain control characters or leading/trailing whitespace;
# requests would otherwise raise InvalidHeader with the value (the key!) in its message
_VALID_KEY = re.compile(r"^[\x21-\x7e]+$")


# `${NAME}` in api_key_file: systemd passes credentials in $CREDENTIALS_DIRECTORY
_ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def keyring_usable() -> bool:
    """Whether a real keyring backend is configured (not keyring's fail/null stand-ins)."""
    try:
        backend = keyring.get_keyring()
    except Exception:  # a broken keyring configuration is no keyring
        return False
    return not isinstance(backend, keyring.backends.fail.Keyring | keyring.backends.null.Keyring)


def _how_to_set(instance: str, env: str | None) -> str:
    var = env or DEFAULT_ENV
    elsewhere = (
        f'set the environment variable {var} and configure api_key_env = "{var}", or '
        "put the key in a file only its owner can read (chmod 600) and configure "
        'api_key_file = "/path/to/that/file"'
    )
    if not keyring_usable():
        return f"this machine has no usable keyring: {elsewhere}"
    return (
        f"run `itglue-ingest auth set --instance {instance}` (stores it in the system "
        f"keyring), or {elsewhere}"
    )


def key_file_path(configured: str | os.PathLike[str], what: str = "api_key_file") -> Path:
    """``configured`` with each ``${NAME}`` replaced by that environment variable."""

    def expand(match: re.Match[str]) -> str:
        value = os.environ.get(match.group(1))
        if not value:
            raise MissingAPIKeyError(
                f"{what} {str(configured)!r}: the environment variable "
                f"{match.group(1)} is not set"
                + (
                    " (set by systemd when the unit has LoadCredential=)"
                    if match.group(1) == "CREDENTIALS_DIRECTORY"
                    else ""
                )
            )
        return value

    return Path(_ENV_REFERENCE.sub(expand, str(configured)))


def _in_credentials_directory(path: Path) -> bool:
    """Whether ``path`` is a systemd credential of this service.

    systemd makes a credential readable by the service's user with an ACL entry, which
    ``stat`` shows as group bits; the folder it lives in is closed to everyone else.
    """
    folder = os.environ.get("CREDENTIALS_DIRECTORY")
    if not folder:
        return False
    try:
        directory = Path(folder).resolve(strict=True)
        inside = path.resolve(strict=True).parent == directory
        return inside and directory.stat().st_mode & 0o007 == 0
    except OSError:
        return False


def read_private_file(configured: str | os.PathLike[str], what: str = "api_key_file") -> Secret:
    """The secret in the file ``configured`` (``${NAME}`` expanded); refuses a file others
    can read. ``what`` names the setting in error messages.

    Checked on the opened file (no window between check and read).
    """
    path = key_file_path(configured, what)
    try:
        with open(path, "rb") as f:
            mode = os.fstat(f.fileno()).st_mode
            if not stat.S_ISREG(mode):
                raise ConfigurationError(f"{what} {path} is not a regular file")
            if mode & 0o077 and not _in_credentials_directory(path):
                raise ConfigurationError(
                    f"{what} {path} is readable by its group or others (mode "
                    f"{stat.S_IMODE(mode):04o}); make it private: chmod 600 {path}"
                )
            raw = f.read(4096)
    except FileNotFoundError:
        raise MissingAPIKeyError(f"{what} {path} does not exist") from None
    except IsADirectoryError:
        raise ConfigurationError(f"{what} {path} is not a regular file") from None
    except PermissionError:
        raise ConfigurationError(
            f"{what} {path} cannot be read by this user (uid {os.getuid()})"
        ) from None
    # undecodable bytes become U+FFFD, which validate_key refuses without echoing them
    wrapped = Secret(raw.decode("utf-8", errors="replace"))
    del raw
    if not wrapped.reveal().strip():
        raise MissingAPIKeyError(f"{what} {path} is empty")
    return wrapped


def read_key_file(configured: str | os.PathLike[str]) -> Secret:
    """The API key in the file ``configured`` (see :func:`read_private_file`). Trailing
    whitespace (the newline an editor adds) is dropped by :func:`validate_key`."""
    return validate_key(read_private_file(configured, "api_key_file"))


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
    if not keyring_usable():  # the null backend would answer "no key" and hide why
        return None, "no system keyring is available"
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
    api_key_file: str | os.PathLike[str] | None = None,
) -> Secret:
    """The key for ``instance``; raises :class:`MissingAPIKeyError` saying how to set it."""
    explicit = Secret(api_key) if isinstance(api_key, str) else api_key
    del api_key
    if explicit is not None:
        return validate_key(explicit)
    if api_key_file is not None and api_key_env:
        raise ConfigurationError("give either api_key_file or api_key_env, not both")
    if api_key_file is not None:
        return read_key_file(api_key_file)
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
            f"variable instead (e.g. {DEFAULT_ENV}) and configure api_key_env, or put "
            "the key in a file only its owner can read and configure api_key_file"
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
    instance: str = "default",
    *,
    api_key_env: str | None = None,
    api_key_file: str | os.PathLike[str] | None = None,
) -> dict[str, object]:
    """Where a key would come from, without revealing it.

    ``{"instance", "configured": bool, "source": "file:PATH"|"env:NAME"|"keyring"|None,
    "keyring_available": bool, "problem": str|None}``
    """
    status: dict[str, object] = {
        "instance": instance,
        "configured": False,
        "source": None,
        "keyring_available": True,
        "problem": None,
    }
    if api_key_file is not None:
        try:
            read_key_file(api_key_file)
        except (ConfigurationError, MissingAPIKeyError) as e:
            status["problem"] = str(e)
        else:
            status.update(configured=True, source=f"file:{key_file_path(api_key_file)}")
        return status
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
