"""Which on-site offers a visitor sees now, and in which variant: pure rules over what
the store knows of the visitor (:class:`VisitorState`), no I/O.

An offer applies when it runs now (``start`` to ``end``), the page matches, the visitor
has made ``min_visits`` visits, has bought nothing if ``no_purchase_yet``, is a signed-in
customer in the offer's segment if it names one, and has not reached the offer's cap of
impressions (in total, or today in the shop's timezone). The variant is fixed by a hash
of the offer and the visitor id, so a visitor sees the same one on every page and day.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass, field

from omnicrm.engage import split
from omnicrm.engage.onsite.settings import OfferSettings


@dataclass(frozen=True)
class VisitorState:
    """What the store knows of a visitor when it asks for offers."""

    visits: int
    purchased: bool = False
    # Offer name -> whether the visitor's customer is in the offer's segment (offers
    # naming a segment only; a visitor who is not signed in is in none).
    in_segment: Mapping[str, bool] = field(default_factory=dict)
    # Offer name -> (impressions today, impressions in total).
    impressions: Mapping[str, tuple[int, int]] = field(default_factory=dict)
    known: bool = True  # seen before this request (False: this request is its first visit)


@dataclass(frozen=True)
class ShownOffer:
    """An offer as the storefront shows it: no data of the visitor's in it."""

    name: str
    variant: str
    kind: str
    text: str
    image: str | None
    link: str | None
    coupon: str | None


def variant_of(name: str, offer: OfferSettings, visitor: str) -> str:
    """The variant of offer ``name`` that ``visitor`` sees: the same every time."""
    variants = offer.all_variants()
    bounds = split.edges([(v.name, v.weight) for v in variants])
    return split.pick(split.unit_of("omnicrm.offer", name, visitor), bounds)


def page_matches(pattern: str | None, page: str | None) -> bool:
    """Whether the page's path matches the offer's glob (no pattern: every page)."""
    if pattern is None:
        return True
    if page is None:
        return False
    return fnmatch.fnmatchcase(page.split("?", 1)[0].split("#", 1)[0], pattern)


def applies(
    name: str, offer: OfferSettings, state: VisitorState, *, page: str | None, now: dt.datetime
) -> bool:
    """Whether ``offer`` is for this visitor on this page now (see the module)."""
    if offer.start is not None and now < offer.start:
        return False
    if offer.end is not None and now >= offer.end:
        return False
    if not page_matches(offer.page, page):
        return False
    if state.visits < offer.min_visits:
        return False
    if offer.no_purchase_yet and state.purchased:
        return False
    if offer.segment is not None and not state.in_segment.get(name, False):
        return False
    if offer.max_impressions is not None:
        today, total = state.impressions.get(name, (0, 0))
        if (today if offer.per == "day" else total) >= offer.max_impressions:
            return False
    return True


def choose(
    offers: Mapping[str, OfferSettings],
    visitor: str,
    state: VisitorState,
    *,
    page: str | None,
    now: dt.datetime,
) -> list[ShownOffer]:
    """The offers ``visitor`` sees now, by name, each in its variant: at most one popup
    (the first by name), every banner."""
    shown: list[ShownOffer] = []
    popup = False
    for name in sorted(offers):
        offer = offers[name]
        if not applies(name, offer, state, page=page, now=now):
            continue
        if offer.kind == "popup":
            if popup:  # two popups at once would hide each other
                continue
            popup = True
        chosen = variant_of(name, offer, visitor)
        variant = next(v for v in offer.all_variants() if v.name == chosen)
        shown.append(
            ShownOffer(
                name=name,
                variant=chosen,
                kind=offer.kind,
                text=variant.text or offer.text,
                image=variant.image or offer.image,
                link=variant.link or offer.link,
                coupon=variant.coupon or offer.coupon,
            )
        )
    return shown
