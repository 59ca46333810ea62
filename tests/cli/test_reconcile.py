"""``omnicrm reconcile`` against the EC-CUBE sandbox: records the shop deleted without a
webhook (EC-CUBE never retries one) are found and deleted, profiles follow, and a dry
run only lists them."""

from __future__ import annotations

import copy
import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from omnicrm import Stream
from omnicrm.cli import cli
from omnicrm.core.store import Store
from omnicrm.plugins.ec_cube.sandbox import authorise
from omnicrm.plugins.ec_cube.sandbox.data import generate
from omnicrm.plugins.ec_cube.sandbox.server import EccubeSandbox


@pytest.fixture
def sandbox() -> Iterator[EccubeSandbox]:
    data = generate(3, customers=30, orders=80, end=dt.datetime(2026, 11, 1, tzinfo=dt.UTC))
    with EccubeSandbox(copy.deepcopy(data)) as server:
        yield server


@pytest.fixture
def config(sandbox: EccubeSandbox, tmp_path: Path, store_url: str) -> Path:
    settings = authorise(sandbox, tmp_path / "tokens" / "shop.json", retries=3)
    lines = "".join(f"{k} = {json.dumps(v)}\n" for k, v in settings.items())
    path = tmp_path / "omnicrm.toml"
    path.write_text(
        f'[store]\nurl = "{store_url}"\n\n'
        '[connections.shop]\nchannel = "ec_cube"\n[connections.shop.settings]\n' + lines,
        encoding="utf-8",
    )
    return path


def run(config: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--config", str(config), *args])
    return result.exit_code, result.output


def test_hard_deletes_without_a_webhook_are_found_and_deleted(
    sandbox: EccubeSandbox, config: Path, store_url: str
) -> None:
    code, out = run(config, "sync", "shop")
    assert code == 0, out
    store = Store.open(store_url)
    try:
        orders = sorted(store.record_ids("shop", Stream.ORDERS), key=int)
        members = sorted(store.record_ids("shop", Stream.CUSTOMERS), key=int)
        gone_order, gone_member = orders[3], members[-1]
        sandbox.delete("order", int(gone_order))  # no webhook: EC-CUBE does not retry one
        sandbox.delete("customer", int(gone_member))

        code, out = run(config, "reconcile", "--dry-run")
        assert code == 0, out
        assert f"shop orders: {len(orders)} checked, 1 gone on the platform" in out
        assert f"would delete: {gone_order}" in out
        assert gone_order in store.record_ids("shop", Stream.ORDERS)

        code, out = run(config, "reconcile", "shop")
        assert code == 0, out
        assert f"deleted: {gone_member}" in out
        assert store.record_ids("shop", Stream.ORDERS) == frozenset(orders) - {gone_order}
        assert store.record_ids("shop", Stream.CUSTOMERS) == frozenset(members) - {gone_member}
        assert store.runs("shop")[0].trigger == "reconcile"
        # The CRM refreshed after the deletes: the member's profile is gone with them.
        code, out = run(config, "customers", "show", f"shop:{gone_member}")
        assert code != 0

        code, out = run(config, "reconcile")
        assert code == 0 and "0 gone" in out and "deleted" not in out
    finally:
        store.close()


def test_a_connection_whose_platform_announces_deletes_is_refused(
    tmp_path: Path, config: Path
) -> None:
    with config.open("a", encoding="utf-8") as file:
        file.write('\n[connections.files]\nchannel = "ec_cube_csv"\n')
    code, out = run(config, "reconcile", "files")
    assert code == 2 and "needs no reconciliation" in out
    code, out = run(config, "reconcile", "nowhere")
    assert code == 2 and "nowhere" in out
