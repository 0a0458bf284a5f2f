"""Console pages: contact_lists (to be built)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.routing import BaseRoute

if TYPE_CHECKING:
    from sesame.console import Console


def routes(console: Console) -> list[BaseRoute]:
    return []
