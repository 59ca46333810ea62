"""Public names report the public module they are imported from, as httpx's do.

``omnicrm.Customer`` then reads ``<class 'omnicrm.Customer'>`` in a repr, a traceback
or the docs, not the private module it happens to be defined in, and pickle finds it
there (``omnicrm`` loads it on first use). Call :func:`public` at the end of the
defining module, after the classes are complete: pydantic and dataclasses resolve
their annotations through ``__module__`` while the class is being built.
"""

from __future__ import annotations

from typing import Any


def public(*objects: Any, module: str = "omnicrm") -> None:
    """Make ``objects`` report ``module`` (a public module exporting them) as their own."""
    for obj in objects:
        obj.__module__ = module
