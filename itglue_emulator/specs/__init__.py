"""The emulated resources' tables, one module per resource group, keyed by collection."""

from __future__ import annotations

from .account import ACCOUNT_SPECS
from .attached import ATTACHED_SPECS
from .catalog import CATALOG_SPECS
from .core_assets import CORE_ASSET_SPECS
from .documents import DOCUMENT_SPECS
from .flexible_assets import FLEXIBLE_ASSET_SPECS
from .organizations import ORGANIZATION_SPECS
from .read_only import READ_ONLY_SPECS
from .spec import Spec

__all__ = ["SPECS", "Spec"]

# the order is the routes' order (and DESTINATION_TYPES': a later spelling would win)
SPECS: dict[str, Spec] = {
    s.collection: s
    for s in (
        *ORGANIZATION_SPECS,
        *CORE_ASSET_SPECS,
        *FLEXIBLE_ASSET_SPECS,
        *DOCUMENT_SPECS,
        *ATTACHED_SPECS,
        *READ_ONLY_SPECS,
        *CATALOG_SPECS,
        *ACCOUNT_SPECS,
    )
}
