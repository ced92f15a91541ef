"""``python -m pipeline``: the ``itglue-ingest`` command line without the console script
(a virtualenv that is not activated, a checkout without an install of the script)."""

from __future__ import annotations

from .cli import main

if __name__ == "__main__":
    main()
