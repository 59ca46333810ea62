"""``omnicrm crm refresh`` and ``omnicrm customers find/show`` through the real CLI."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

from omnicrm.cli import cli
from omnicrm.core.channels import Stream
from omnicrm.core.records import Address, Customer, Order, OrderLine, OrderStatus
from omnicrm.core.store import Store

T0 = dt.datetime(2026, 1, 5, 3, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def _wide(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")


@pytest.fixture
def config(store: Store, store_url: str, tmp_path: Path) -> Path:
    store.write_batch(
        "ec",
        Stream.CUSTOMERS,
        [
            Customer(
                id="E1",
                family_name="鈴木",
                given_name="一郎",
                family_name_kana="スズキ",
                given_name_kana="イチロウ",
                email="ichiro@example.jp",
                address=Address(
                    postal_code="150-0002", prefecture="東京都", city="渋谷区", line1="渋谷2-1-1"
                ),
                updated_at=T0,
            )
        ],
    )
    store.write_batch(
        "ec",
        Stream.ORDERS,
        [
            Order(
                id="O1",
                customer_id="E1",
                status=OrderStatus.PAID,
                placed_at=T0,
                updated_at=T0,
                subtotal=Decimal(4200),
                total=Decimal(4200),
                lines=[OrderLine(product_name="抹茶", quantity=2, unit_price=Decimal(2100))],
            )
        ],
    )
    path = tmp_path / "omnicrm.toml"
    path.write_text(f'[store]\nurl = "{store_url}"\n', encoding="utf-8")
    return path


def test_refresh_then_find_and_show(config: Path) -> None:
    runner = CliRunner()
    refreshed = runner.invoke(cli, ["--config", str(config), "crm", "refresh"])
    assert refreshed.exit_code == 0, refreshed.output
    assert "1 profile(s) updated" in refreshed.output

    found = runner.invoke(cli, ["--config", str(config), "customers", "find", "すずき"])
    assert found.exit_code == 0, found.output
    assert "鈴木 一郎" in found.output and "ichiro@example.jp" in found.output
    profile_id = found.output.split("鈴木")[0].split()[-1]

    shown = runner.invoke(cli, ["--config", str(config), "customers", "show", profile_id])
    assert shown.exit_code == 0, shown.output
    for expected in (
        "スズキ イチロウ",
        "〒150-0002 東京都 渋谷区 渋谷2-1-1",
        "1 for ¥4,200",
        "抹茶",
        "Source records (1)",
        "42 (ec 42)",
        "nothing was merged",
    ):
        assert expected in shown.output


def test_show_unknown_profile_exits_2_with_a_message(config: Path) -> None:
    result = CliRunner().invoke(cli, ["--config", str(config), "customers", "show", "999"])
    assert result.exit_code == 2
    assert "no profile 999" in result.output


def test_find_nothing_says_so(config: Path) -> None:
    result = CliRunner().invoke(cli, ["--config", str(config), "customers", "find", "nobody"])
    assert result.exit_code == 0
    assert "no profile matches 'nobody'" in result.output


def test_show_says_when_a_member_withdrew(store: Store, config: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(cli, ["--config", str(config), "crm", "refresh"]).exit_code == 0
    shown = runner.invoke(cli, ["--config", str(config), "customers", "show", "ec:E1"])
    assert shown.exit_code == 0, shown.output
    assert "Source records (1)" in shown.output and "退会" not in shown.output
    left = dt.datetime(2026, 2, 1, 16, tzinfo=dt.UTC)  # 2 February in Tokyo
    withdrawn = Customer(
        id="E1", family_name="鈴木", given_name="一郎", updated_at=left, withdrawn_at=left
    )
    store.write_batch("ec", Stream.CUSTOMERS, [withdrawn])
    # Synced, not refreshed yet: still in the profile, marked.
    shown = runner.invoke(cli, ["--config", str(config), "customers", "show", "ec:E1"])
    assert shown.exit_code == 0, shown.output
    assert "退会 withdrawn 2026-02-02" in shown.output
    # Refreshed: in no profile; shown on its own, with its sale counted for nobody.
    assert runner.invoke(cli, ["--config", str(config), "crm", "refresh"]).exit_code == 0
    shown = runner.invoke(cli, ["--config", str(config), "customers", "show", "ec:E1"])
    assert shown.exit_code == 0, shown.output
    for expected in ("ec:E1", "鈴木 一郎", "退会 withdrawn 2026-02-02", "1 purchase(s), ¥4,200"):
        assert expected in shown.output
    assert "Source records" not in shown.output
    found = runner.invoke(cli, ["--config", str(config), "customers", "find", "すずき"])
    assert "no profile matches" in found.output


@pytest.mark.parametrize(
    ("arg", "message"),
    [("ec:NOPE", "no source customer ec:NOPE"), ("E1", "neither a profile id nor CONNECTION:ID")],
)
def test_show_by_record_names_what_is_wrong(config: Path, arg: str, message: str) -> None:
    result = CliRunner().invoke(cli, ["--config", str(config), "customers", "show", arg])
    assert result.exit_code == 2
    assert message in result.output
