"""The SQLite metadata cache of one IT Glue instance (see :mod:`.store` for the design).

``from core_client.cache import MetadataCache``; ``CachedDocument`` is what the
hash/name document lookups return.
"""

from .base import DEFAULT_MAX_AGE
from .records import CachedDocument, name_key
from .search import SearchHit
from .store import MetadataCache

__all__ = ["DEFAULT_MAX_AGE", "CachedDocument", "MetadataCache", "SearchHit", "name_key"]
