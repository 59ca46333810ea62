"""Splitting people between variants by weight: a number fixed by the person (a hash in
[0, SPAN)) falls into one variant's share of the span. Campaigns hash a profile id in
SQL (:mod:`omnicrm.engage.campaigns`); on-site offers hash a visitor id here."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

SPAN = 2**31 - 1  # a prime: the campaigns' hash is arithmetic modulo it


def edges(
    weights: Sequence[tuple[str, float]], *, holdout: float = 0.0, holdout_name: str = "holdout"
) -> list[tuple[int, str]]:
    """(upper bound of the hash, group) for the hold-out share (if any) then each
    weighted variant, the last one ending at SPAN."""
    cut = int(holdout * SPAN)
    found = [(cut, holdout_name)] if holdout > 0 else []
    total = sum(weight for _, weight in weights)
    share = 0.0
    for name, weight in weights[:-1]:
        share += weight / total
        found.append((cut + int((SPAN - cut) * share), name))
    found.append((SPAN, weights[-1][0]))
    return found


def pick(unit: int, bounds: Sequence[tuple[int, str]]) -> str:
    """The group whose share holds ``unit``."""
    return next(name for edge, name in bounds if unit < edge)


def unit_of(*parts: str) -> int:
    """A number in [0, SPAN) fixed by ``parts`` (an offer and a visitor id)."""
    digest = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % SPAN
