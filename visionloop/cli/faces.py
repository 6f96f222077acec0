"""``visionloop faces``: faces in images (detect, compare) and face collections (index, search, users)."""

from __future__ import annotations

from visionloop.cli.app import cli


@cli.group()
def faces() -> None:
    """Detect and compare faces; manage face collections and search them."""
