"""Reconciliation: the balance a platform reports against the ledger's, one shop at a time."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass

from sqlalchemy import Connection, and_, func, select

from omnicrm.core.store import Store
from omnicrm.core.store.schema import customers
from omnicrm.crm.points._common import get_state, member_join, put_state
from omnicrm.crm.points.settings import PointsSettings, ReconcileAgainst
from omnicrm.crm.schema import points_entries, profile_members

STATE_KEY = "points_reconciliation"
MAX_RECORDED = 1000  # differences kept in crm_state; the count is always exact


@dataclass(frozen=True)
class Discrepancy:
    """A source customer whose platform reports another balance than the ledger holds."""

    profile_id: int | None  # None: not resolved into a profile yet
    connection: str
    customer_id: str
    platform_balance: int
    ledger_balance: int

    @property
    def difference(self) -> int:
        """Platform minus ledger: positive when the platform shows more points."""
        return self.platform_balance - self.ledger_balance


@dataclass(frozen=True)
class Reconciliation:
    """One reconciliation run, as recorded in crm_state 'points_reconciliation'."""

    ran_at: dt.datetime
    against: ReconcileAgainst
    checked: int  # source customers whose platform reports a balance
    differences: list[Discrepancy]


def reconcile(conn: Connection, settings: PointsSettings, *, shop: str) -> list[Discrepancy]:
    """Every source customer of ``shop`` whose reported balance (customers.points) differs
    from the ledger: that member's own entries, or the whole wallet of its profile, per
    ``settings.reconcile_against``. Sorted by connection and customer id."""
    return _compare(conn, settings, shop)[1]


def _compare(
    conn: Connection, settings: PointsSettings, shop: str
) -> tuple[int, list[Discrepancy]]:
    # A withdrawn member's points are forfeit (docs/points.md): nothing to reconcile.
    reporting = and_(
        customers.c.shop == shop,
        customers.c.points.is_not(None),
        customers.c.withdrawn_at.is_(None),
    )
    own = (
        select(
            points_entries.c.connection,
            points_entries.c.customer_id,
            func.sum(points_entries.c.points).label("points"),
        )
        .where(points_entries.c.shop == shop)
        .group_by(points_entries.c.connection, points_entries.c.customer_id)
        .subquery("own")
    )
    member = profile_members.alias("member")
    ledger = func.coalesce(own.c.points, 0)
    joins = customers.outerjoin(
        member,
        and_(member.c.connection == customers.c.connection, member.c.record_id == customers.c.id),
    ).outerjoin(
        own, and_(own.c.connection == customers.c.connection, own.c.customer_id == customers.c.id)
    )
    if settings.reconcile_against is ReconcileAgainst.WALLET:
        # Only the wallets of profiles with a reporting member are summed.
        reporting_profiles = (
            select(profile_members.c.profile_id)
            .select_from(
                profile_members.join(
                    customers,
                    and_(
                        customers.c.connection == profile_members.c.connection,
                        customers.c.id == profile_members.c.record_id,
                    ),
                )
            )
            .where(reporting)
        )
        wallet = (
            select(
                profile_members.c.profile_id,
                func.sum(points_entries.c.points).label("points"),
            )
            .select_from(member_join())
            .where(
                points_entries.c.shop == shop,
                profile_members.c.profile_id.in_(reporting_profiles),
            )
            .group_by(profile_members.c.profile_id)
            .subquery("wallet")
        )
        joins = joins.outerjoin(wallet, wallet.c.profile_id == member.c.profile_id)
        # A customer in no profile yet is its own wallet.
        ledger = func.coalesce(wallet.c.points, func.coalesce(own.c.points, 0))
    checked = int(
        conn.execute(select(func.count()).select_from(customers).where(reporting)).scalar_one()
    )
    rows = conn.execute(
        select(
            member.c.profile_id,
            customers.c.connection,
            customers.c.id,
            customers.c.points,
            ledger.label("ledger"),
        )
        .select_from(joins)
        .where(reporting, customers.c.points != ledger)
        .order_by(customers.c.connection, customers.c.id)
    ).all()
    return checked, [
        Discrepancy(r.profile_id, r.connection, r.id, int(r.points), int(r.ledger)) for r in rows
    ]


def run_reconciliation(
    store: Store, settings: PointsSettings, now: dt.datetime, *, shop: str
) -> Reconciliation:
    """Reconcile ``shop`` as a whole command (the nightly job) and record the outcome in
    the shop's crm_state 'points_reconciliation': {ran_at, against, checked, count,
    differences (the first 1000, each with its difference), truncated}."""
    with store.engine.begin() as conn:
        checked, found = _compare(conn, settings, shop)
        recorded = [{**asdict(d), "difference": d.difference} for d in found[:MAX_RECORDED]]
        put_state(
            conn,
            STATE_KEY,
            {
                "ran_at": now.isoformat(),
                "against": settings.reconcile_against.value,
                "checked": checked,
                "count": len(found),
                "differences": recorded,
                "truncated": len(found) > MAX_RECORDED,
            },
            now,
            shop=shop,
        )
    return Reconciliation(now, settings.reconcile_against, checked, found)


def last_reconciliation(conn: Connection, *, shop: str) -> dict[str, object] | None:
    """What the last run in ``shop`` recorded (see :func:`run_reconciliation`), or None."""
    value = get_state(conn, STATE_KEY, shop=shop)
    return dict(value) if value is not None else None
