"""The Smaregi sandbox's transaction listing, page by page, against the seed."""

from __future__ import annotations

import datetime as dt
import functools

import httpx

from omnicrm.plugins.pos.seed import JST, StoreData
from omnicrm.plugins.pos.smaregi.sandbox.server import TRANSACTION_BASE, SmaregiSandbox


def _ids(sandbox: SmaregiSandbox, params: dict[str, str], limit: int) -> list[str]:
    """Every transactionHeadId of a listing, read page by page over HTTP."""
    token = httpx.post(
        f"{sandbox.url}/app/{sandbox.contract_id}/token",
        data={"grant_type": "client_credentials", "scope": "pos.transactions:read"},
        auth=(sandbox.client_id, sandbox.client_secret),
    ).json()["access_token"]
    ids: list[str] = []
    with httpx.Client(headers={"Authorization": f"Bearer {token}"}) as http:
        page = 1
        while True:
            reply = http.get(
                f"{sandbox.url}/{sandbox.contract_id}/pos/transactions",
                params={**params, "limit": limit, "page": page},
            )
            assert reply.status_code == 200, reply.text
            ids += [r["transactionHeadId"] for r in reply.json()]
            if len(reply.json()) < limit:
                return ids
            page += 1


def _expected(
    seeded: StoreData, low: dt.datetime, high: dt.datetime, now: dt.datetime
) -> list[str]:
    """The window's sales at ``now`` in (updDateTime, id) order, from the seed itself."""
    listed = []
    for sale in seeded.sales:
        if sale.received_at > now:
            continue
        cancelled = sale.cancelled_at is not None and sale.cancelled_at <= now
        stamped = sale.sold_at if sale.offline else sale.received_at
        updated = sale.cancelled_at if cancelled and sale.cancelled_at else stamped
        if low <= updated <= high:
            listed.append((updated, sale.number))
    return [str(TRANSACTION_BASE + number) for _, number in sorted(listed)]


def test_a_windows_pages_list_each_sale_once_in_order_whatever_the_clock(
    sandbox: SmaregiSandbox, seeded: StoreData
) -> None:
    # The sandbox keeps the last window it listed for the next page: the pages must
    # still follow the clock, the window asked for, and either direction.
    cancelled = next(s for s in seeded.sales if s.cancelled_at is not None)
    assert cancelled.cancelled_at is not None
    low = cancelled.cancelled_at - dt.timedelta(days=20)
    high = cancelled.cancelled_at + dt.timedelta(days=10)
    # A day before the cancel: later sales not yet made, the sale at its own stamp.
    before = cancelled.cancelled_at - dt.timedelta(days=1)
    assert _expected(seeded, low, high, before) != _expected(seeded, low, high, seeded.end)
    params = {
        "upd_date_time-from": low.astimezone(JST).isoformat(timespec="seconds"),
        "upd_date_time-to": high.astimezone(JST).isoformat(timespec="seconds"),
        "sort": "updDateTime,transactionHeadId",
    }
    for now in (before, seeded.end, before):
        sandbox.clock = functools.partial(lambda at: at, now)
        wanted = _expected(seeded, low, high, now)
        assert len(wanted) > 20  # pages of 7 and 11: several of each
        assert _ids(sandbox, params, 7) == wanted
        descending = {**params, "sort": "updDateTime:desc,transactionHeadId:desc"}
        assert _ids(sandbox, descending, 11) == wanted[::-1]
    other = {**params, "upd_date_time-from": (low + dt.timedelta(days=5)).isoformat()}
    assert _ids(sandbox, other, 7) == _expected(seeded, low + dt.timedelta(days=5), high, before)
