"""IT Glue instance names in options: a routing rule's or a plugin's ``instance`` key.

``InstanceField`` is checked against the configuration's instances (the pydantic
validation context the engine and ``validate`` give an options model), so a typo is one
line naming the key and the close matches, before any record is routed there.
"""

from __future__ import annotations

import difflib
from typing import Annotated, Any

from pydantic import AfterValidator, ValidationInfo

#: the pydantic validation-context key holding the configuration's instance names
INSTANCES = "itglue_instances"


def unknown_instance(name: str, known: list[str]) -> str:
    """The message for an instance name the configuration does not have."""
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return f"unknown IT Glue instance {name!r} (instances: {', '.join(known)}){hint}"


def check_instance(value: str, info: ValidationInfo) -> str:
    context: Any = info.context
    known = context.get(INSTANCES) if isinstance(context, dict) else None
    if known is not None and value not in known:
        raise ValueError(unknown_instance(value, list(known)))
    return value


InstanceField = Annotated[str, AfterValidator(check_instance)]
"""The name of an IT Glue instance (``[itglue.instances.NAME]``, or the single
``[itglue] instance``); checked against the configuration when its options are."""
