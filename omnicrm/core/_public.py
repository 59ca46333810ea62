"""Public names report the public module they are imported from, as httpx's do.

``omnicrm.Customer`` then reads ``<class 'omnicrm.Customer'>`` in a repr, a traceback
or the docs, not the private module it happens to be defined in, and pickle finds it
there (``omnicrm`` loads it on first use). Call :func:`public` at the end of the
defining module, once its classes are complete.
"""

from __future__ import annotations

import contextlib
import inspect
import sys
from typing import Any


def public(*objects: Any, module: str = "omnicrm") -> None:
    """Make ``objects`` report ``module`` (a public module exporting them) as their own."""
    for obj in objects:
        if isinstance(obj, type):
            _resolve_annotations(obj)
        obj.__module__ = module


def _resolve_annotations(cls: type) -> None:
    """Evaluate a class's string annotations in its defining module, while it still is.

    ``typing.get_type_hints`` and pydantic (a ``TypeAdapter`` over a dataclass) resolve
    them through ``__module__``, whose namespace is about to be one that lacks the names
    they use. A name imported for type checking only stays a string, as it was.
    """
    own = inspect.get_annotations(cls)
    if not own:
        return
    namespace = {**vars(sys.modules[cls.__module__]), cls.__name__: cls}
    resolved: dict[str, Any] = {}
    for name, value in own.items():
        if isinstance(value, str):
            with contextlib.suppress(NameError):  # as typing would, from our own source
                value = eval(value, namespace, dict(vars(cls)))
        resolved[name] = value
    cls.__annotations__ = resolved
    for field in getattr(cls, "__dataclass_fields__", {}).values():
        field.type = resolved.get(field.name, field.type)  # pydantic reads the fields'
