"""Shared by the end-to-end tests."""

from __future__ import annotations

ORGS = ("Acme Corp", "Globex", "Initech", "Umbrella Corporation")
