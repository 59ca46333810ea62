"""Shared points: one wallet per unified customer, across the store and the EC site.

The ledger (``points_entries``) holds every change of a balance, each keyed by
(source, event_id) so a re-sync or a re-import never counts twice. See docs/points.md.
"""

from omnicrm.crm.points._common import (
    Entry,
    EntryKind,
    EventConflictError,
    InsufficientPointsError,
    PointsError,
    UnknownProfileError,
    plus_months,
)
from omnicrm.crm.points.expiry import Expired, expire, run_expiry
from omnicrm.crm.points.importer import ImportResult, PointsImportError, import_point_events
from omnicrm.crm.points.ledger import (
    AppliedPoints,
    Balance,
    adjust,
    apply_order_points,
    balance,
    history,
    primary_member,
    redeem,
    refresh_balances,
)
from omnicrm.crm.points.reconcile import (
    Discrepancy,
    Reconciliation,
    last_reconciliation,
    reconcile,
    run_reconciliation,
)
from omnicrm.crm.points.settings import EarnBase, PointsSettings, ReconcileAgainst, Rounding

__all__ = [
    "AppliedPoints",
    "Balance",
    "Discrepancy",
    "EarnBase",
    "Entry",
    "EntryKind",
    "EventConflictError",
    "Expired",
    "ImportResult",
    "InsufficientPointsError",
    "PointsError",
    "PointsImportError",
    "PointsSettings",
    "ReconcileAgainst",
    "Reconciliation",
    "Rounding",
    "UnknownProfileError",
    "adjust",
    "apply_order_points",
    "balance",
    "expire",
    "history",
    "import_point_events",
    "last_reconciliation",
    "plus_months",
    "primary_member",
    "reconcile",
    "redeem",
    "refresh_balances",
    "run_expiry",
    "run_reconciliation",
]
