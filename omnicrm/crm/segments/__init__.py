"""Customer segments: a query language over profiles, the built-ins, scoring and counts.

- `language`: the Shopify-style segment language, parsed to an AST
  (`parse`, `SegmentSyntaxError`);
- `compile`: an expression to a SQLAlchemy boolean over ``profiles``;
- `scoring`: RFM scores and groups and lifecycle stages, set-based;
- `builtin`: the 20 built-in segments;
- `catalog`: segment definitions (the ``segments`` table);
- `counts`: counts in one scan, incremental counts, history and members.

docs/segments.md is the user's reference.
"""

from omnicrm.crm.segments.builtin import BUILTIN_SEGMENTS, BuiltinSegment
from omnicrm.crm.segments.catalog import (
    Segment,
    define,
    ensure_builtin,
    get_segment,
    list_segments,
    remove,
)
from omnicrm.crm.segments.compile import DEFAULT_TZ, compile_expression
from omnicrm.crm.segments.counts import (
    CountPoint,
    LatestCount,
    Member,
    Recount,
    apply_delta,
    begin_recount,
    count_all,
    count_segments,
    history,
    latest_counts,
    members,
    prune_history,
    record_counts,
    record_new_count,
)
from omnicrm.crm.segments.language import (
    ATTRIBUTES,
    Attribute,
    SegmentError,
    SegmentSyntaxError,
    parse,
)
from omnicrm.crm.segments.scoring import (
    RFM_RULES,
    RfmCuts,
    rfm_group,
    score_profiles,
    score_rfm,
    stored_cuts,
    update_lifecycle,
)

__all__ = [
    "ATTRIBUTES",
    "BUILTIN_SEGMENTS",
    "DEFAULT_TZ",
    "RFM_RULES",
    "Attribute",
    "BuiltinSegment",
    "CountPoint",
    "LatestCount",
    "Member",
    "Recount",
    "RfmCuts",
    "Segment",
    "SegmentError",
    "SegmentSyntaxError",
    "apply_delta",
    "begin_recount",
    "compile_expression",
    "count_all",
    "count_segments",
    "define",
    "ensure_builtin",
    "get_segment",
    "history",
    "latest_counts",
    "list_segments",
    "members",
    "parse",
    "prune_history",
    "record_counts",
    "record_new_count",
    "remove",
    "rfm_group",
    "score_profiles",
    "score_rfm",
    "stored_cuts",
    "update_lifecycle",
]
