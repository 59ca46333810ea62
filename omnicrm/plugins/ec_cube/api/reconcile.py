"""The nightly id reconciliation: which stored records the shop no longer has.

EC-CUBE does not retry a webhook, so a hard delete whose notice was lost stays in the
store. Reconciling lists every id the API has (``CustomerIds`` / ``OrderIds``, all
statuses the plugin reads, updated before the run's start) and compares them with the
ids stored. Listing by offset can skip a row that moves while it pages, so an id that
seems gone is confirmed one by one (``customer(id)`` / ``order(id)`` answers null)
before it is called deleted: a row that moved is never taken for a deleted one.

The plugin answers ``omnicrm_reconcile`` with it; the engine deletes what it finds,
nightly (``[scheduler] reconcile``) or on ``omnicrm reconcile``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from omnicrm.errors import TransientError
from omnicrm.plugins.ec_cube.api.client import EccubeClient

_LISTS = {
    "customers": ("CustomerIds", "Customer", "customer"),
    "orders": ("OrderIds", "Order", "order"),
}
LIMIT = 100


def listed_ids(api: EccubeClient, kind: str, until: dt.datetime) -> set[str]:
    """Every id of ``kind`` ("customers" or "orders") the API lists as updated before
    ``until`` (by offset: a row moved meanwhile may be missing)."""
    operation = _LISTS[kind][0]
    end = until.astimezone(api.settings.zone).replace(microsecond=0).isoformat()
    found: set[str] = set()
    page = 1
    while True:
        data = api.run(operation, {"page": page, "limit": LIMIT, "end": end}).get(kind)
        if not isinstance(data, dict) or not isinstance(data.get("nodes"), list):
            raise TransientError(f"EC-CUBE's answer to {operation} lacks nodes")
        nodes = data["nodes"]
        found.update(str(n["id"]) for n in nodes if isinstance(n, dict) and "id" in n)
        if len(nodes) < LIMIT or page * LIMIT >= int(data.get("totalCount", 0)):
            return found
        page += 1


def deleted_ids(
    api: EccubeClient, kind: str, stored: Iterable[str], until: dt.datetime
) -> list[str]:
    """The ``stored`` ids of ``kind`` the shop no longer has, each confirmed by a fetch."""
    _, single, root = _LISTS[kind]
    candidates = sorted(set(stored) - listed_ids(api, kind, until), key=lambda i: (len(i), i))
    return [i for i in candidates if api.run(single, {"id": i}).get(root) is None]
