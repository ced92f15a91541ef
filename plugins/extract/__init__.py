"""Provisional package marker (the extract13core engineer owns this module)."""
