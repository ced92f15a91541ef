"""Every secret a configuration needs, looked up (never shown) where the engine will."""

from __future__ import annotations

from ..errors import PermanentError
from ..secrets import read_secret
from ..settings import Settings
from ..sources import SourceOptions


def uses_itglue(settings: Settings) -> bool:
    """Whether the engine will talk to IT Glue (and so needs the key): the IT Glue sink,
    or the routing transform (it resolves organization names through the API)."""
    return settings.pipeline.sink == "itglue" or "route" in settings.pipeline.transforms


def api_key_problems(settings: Settings) -> list[str]:
    """Why an IT Glue instance's API key cannot be read, one line per instance (the key
    itself is not shown)."""
    from core_client.auth import get_api_key
    from core_client.exceptions import ConfigurationError

    problems = []
    for name, it in settings.itglue.named.items():
        try:
            get_api_key(name, api_key_env=it.api_key_env, api_key_file=it.api_key_file)
        except ConfigurationError as e:
            problems.append(f"{instance_key(settings, name)}: {e}")
    return problems


def instance_key(settings: Settings, name: str) -> str:
    """The table an instance's problems name: ``itglue`` or ``itglue.instances.NAME``."""
    return f"itglue.instances.{name}" if settings.itglue.instances else "itglue"


def source_secret_problems(key: str, name: str, options: SourceOptions) -> list[str]:
    """Why a secret of source ``name`` (its options at ``key``) cannot be read, if so."""
    problems = []
    for secret, env in options.secrets():
        try:
            read_secret(f"source:{name}:{secret}", secret, env, f"source {name!r}")
        except PermanentError as e:
            problems.append(f"{key}: {e.reason}")
    return problems
