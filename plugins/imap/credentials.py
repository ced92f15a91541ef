"""The IMAP login credential: a password, or an OAuth2 access token (hook or command)."""

from __future__ import annotations

import subprocess

from pipeline import PermanentError, SourceContext, register_secret

from .options import ImapOptions


def credential(source: str, options: ImapOptions, context: SourceContext) -> str:
    """The password, or (``auth = "xoauth2"``) a token from a plugin's
    ``ingest_access_token`` hook, else from ``token_command``."""
    if options.auth == "password":
        return context.secret("password", env=options.password_env)
    token = context.access_token(options.username)
    if token:
        return token
    if options.token_command:
        return command_token(source, options.token_command)
    raise PermanentError(
        f"source {source!r}: auth = 'xoauth2' needs an access token: install a plugin"
        " implementing ingest_access_token, or set token_command"
    )


def command_token(source: str, command: list[str]) -> str:
    """The token ``command`` prints on stdout (registered as a secret, like a hook's)."""
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise PermanentError(
            f"source {source!r}: token_command {command[0]!r} could not run: {type(e).__name__}"
        ) from None
    token = proc.stdout.strip()
    if proc.returncode != 0 or not token:
        raise PermanentError(
            f"source {source!r}: token_command {command[0]!r} exited with"
            f" {proc.returncode} and {'no' if not token else 'a'} token on stdout"
        )
    register_secret(token)  # like a token from the ingest_access_token hook
    return token
