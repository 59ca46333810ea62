"""The id reconciliation finds hard deletes, and never takes a row that moved while the
ids paged for a deleted one."""

from __future__ import annotations

import datetime as dt
import random

from omnicrm.plugins.ec_cube.api.client import EccubeClient
from omnicrm.plugins.ec_cube.api.reconcile import deleted_ids
from omnicrm.plugins.ec_cube.api.settings import EccubeSettings
from omnicrm.plugins.ec_cube.sandbox.server import EccubeSandbox


def test_hard_deletes_are_found_and_moved_rows_are_not(
    sandbox: EccubeSandbox, settings: EccubeSettings
) -> None:
    stored = {str(i) for i, r in sandbox.orders.rows.items() if r.status not in ("7", "8")}
    gone = sorted(stored, key=int)[5:8]
    for ident in gone:
        sandbox.delete("order", int(ident))
    rng = random.Random(1)

    def churn() -> None:  # rows saved while the ids page: offsets shift
        ident = rng.choice(sorted(stored - set(gone)))
        sandbox.update("order", int(ident))

    sandbox.after_query = churn
    until = dt.datetime.now(dt.UTC)
    with EccubeClient(settings, "shop") as api:
        found = deleted_ids(api, "orders", stored, until)
    sandbox.after_query = None
    assert found == gone
    members = {str(i) for i in sandbox.customers.rows}
    sandbox.delete("customer", 3)
    with EccubeClient(settings, "shop") as api:
        assert deleted_ids(api, "customers", members, until) == ["3"]
