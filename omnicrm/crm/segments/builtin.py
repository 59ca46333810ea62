"""The 20 built-in segments: 11 RFM groups, 6 lifecycle stages and 3 channel mixes.

Each is an ordinary expression of the segment language over the columns the scoring
keeps (``rfm_group``, ``lifecycle_stage``) and the profile refresh keeps
(``channel_mix``), so they count in the same single scan as any user segment.
"""

from __future__ import annotations

from dataclasses import dataclass

from omnicrm.crm.segments.scoring import (
    ACTIVE_DAYS,
    LAPSED_DAYS,
    LOYAL_ORDERS,
    NEW_DAYS,
    RFM_RULES,
)

# Names in these namespaces belong to the built-ins.
BUILTIN_PREFIXES = ("rfm:", "lifecycle:", "channel:")


@dataclass(frozen=True)
class BuiltinSegment:
    name: str
    title: str
    expression: str
    description: str


def _slug(value: str) -> str:
    return value.replace("_", "-")


_LIFECYCLE = (
    (
        "new",
        "New one-time buyer",
        f"One purchase, under {NEW_DAYS} days ago.",
    ),
    (
        "second_purchase_candidate",
        "Second-purchase candidate",
        f"One purchase, {NEW_DAYS} to {ACTIVE_DAYS - 1} days ago: the time to win a second.",
    ),
    (
        "repeat",
        "Repeat customer",
        f"2 to {LOYAL_ORDERS - 1} purchases, the last under {ACTIVE_DAYS} days ago.",
    ),
    (
        "loyal",
        "Loyal customer",
        f"{LOYAL_ORDERS} or more purchases, the last under {ACTIVE_DAYS} days ago.",
    ),
    (
        "dormant",
        "Dormant",
        f"Last purchase {ACTIVE_DAYS} to {LAPSED_DAYS - 1} days ago.",
    ),
    (
        "lapsed",
        "Lapsed",
        f"Last purchase {LAPSED_DAYS} or more days ago.",
    ),
)

_CHANNEL = (
    ("store_only", "Store only", "Bought in the store (POS) and never online."),
    ("ec_only", "EC only", "Bought online (any non-POS channel) and never in the store."),
    ("both", "Store and EC", "Bought both in the store and online."),
)

BUILTIN_SEGMENTS: tuple[BuiltinSegment, ...] = (
    *(
        BuiltinSegment(
            f"rfm:{_slug(rule.group)}",
            rule.title,
            f"rfm_group = {rule.group}",
            f"{rule.description} ({rule.rule})",
        )
        for rule in RFM_RULES
    ),
    *(
        BuiltinSegment(f"lifecycle:{_slug(stage)}", title, f"lifecycle_stage = {stage}", text)
        for stage, title, text in _LIFECYCLE
    ),
    *(
        BuiltinSegment(f"channel:{_slug(mix)}", title, f"channel_mix = {mix}", text)
        for mix, title, text in _CHANNEL
    ),
)

BUILTIN_BY_NAME: dict[str, BuiltinSegment] = {s.name: s for s in BUILTIN_SEGMENTS}
