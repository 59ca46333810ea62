"""``omnicrm points``, on both backends."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from omnicrm.cli._common import Context
from omnicrm.cli.points import points
from omnicrm.core.channels import DEFAULT_SHOP
from omnicrm.core.store import Store
from omnicrm.crm.points import PointsSettings, apply_order_points
from tests.crm.points.shop import T0, add_profile, customer, ledger, order, write


@pytest.fixture(autouse=True)
def _wide(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")


@pytest.fixture
def config(tmp_path: Path, store: Store) -> Path:
    """A config on the test store, store purchases earning double; profile 1 holds EC
    customer c1 (10 points) and POS customer m1 (40 points, its POS says 45), earned on
    orders of last month (not expired)."""
    path = tmp_path / "omnicrm.toml"
    url = store.url.render_as_string(hide_password=False)
    path.write_text(
        f'[store]\nurl = "{url}"\n\n[points]\nchannel_multipliers = {{ pos = 2 }}\n',
        encoding="utf-8",
    )
    write(store, "ec", customer("c1"), order("o1", "c1", 1000, placed=LAST_MONTH))
    write(
        store,
        "pos",
        customer("m1", points=45),
        order("p1", "m1", 2000, channel="pos", placed=LAST_MONTH),
    )
    add_profile(store, 1, ("ec", "c1"), ("pos", "m1"))
    _apply(store)
    return path


LAST_MONTH = dt.datetime.now(dt.UTC) - dt.timedelta(days=30)
SETTINGS = PointsSettings.model_validate({"channel_multipliers": {"pos": 2}})


def _apply(store: Store) -> None:
    with store.engine.begin() as conn:
        apply_order_points(conn, SETTINGS, dt.datetime.now(dt.UTC), shop=DEFAULT_SHOP)


def _old_order(store: Store) -> None:
    """An order of April 2024 for c1: its 30 points expired a year on."""
    write(store, "ec", order("old", "c1", 3000, placed=T0))
    _apply(store)


def run(config: Path, *args: str) -> Result:
    return CliRunner().invoke(points, list(args), obj=Context(config), catch_exceptions=False)


def test_balance_and_history(config: Path) -> None:
    shown = run(config, "balance", "1")
    assert shown.exit_code == 0, shown.output
    lines = [line.split() for line in shown.output.splitlines()]
    assert ["ec", "10"] in lines and ["pos", "40"] in lines and ["total", "50"] in lines
    listed = run(config, "history", "1")
    assert listed.exit_code == 0, listed.output
    assert "earn:o1" in listed.output and "earn:p1" in listed.output
    assert "2 entries, balance 50" in listed.output


def test_adjust_and_redeem(config: Path, store: Store) -> None:
    taken = run(config, "adjust", "1", "-15", "--note", "till error", "--event-id", "fix-1")
    assert taken.exit_code == 0, taken.output
    assert "adjust -15" in taken.output and "balance now 35" in taken.output
    assert (
        run(config, "adjust", "1", "-15", "--note", "till error", "--event-id", "fix-1").exit_code
        == 0
    )
    spent = run(config, "redeem", "1", "30", "--note", "coupon")
    assert spent.exit_code == 0, spent.output
    assert "redeem -30" in spent.output and "balance now 5" in spent.output
    refused = run(config, "redeem", "1", "6")
    assert refused.exit_code == 1
    assert "profile 1 has 5 points; cannot redeem 6" in refused.output
    assert sorted(p for (_, event), p in ledger(store).items() if event.startswith("adjust:")) == [
        -15
    ]
    missing_note = run(config, "adjust", "1", "5")
    assert missing_note.exit_code == 2 and "--note" in missing_note.output


def test_unknown_profile_is_bad_input(config: Path) -> None:
    for args in (["balance", "9"], ["history", "9"], ["redeem", "9", "1"]):
        result = run(config, *args)
        assert result.exit_code == 2, args
        assert "no profile 9" in result.output


def test_import_reports_problems_with_exit_2_and_imports_a_good_file(
    config: Path, store: Store, tmp_path: Path
) -> None:
    header = "connection,customer_id,event_id,kind,points,occurred_at\n"
    bad = tmp_path / "bad.csv"
    bad.write_text(header + "pos,m1,E-1,earn,x,2025-04-01 10:00\n", encoding="utf-8")
    result = run(config, "import", str(bad))
    assert result.exit_code == 2
    assert f"{bad}:2:points: 'x' is not a whole number" in result.output
    good = tmp_path / "good.csv"
    good.write_text(header + "pos,m1,E-1,earn,5,2025-04-01 10:00\n", encoding="utf-8")
    result = run(config, "import", str(good))
    assert result.exit_code == 0, result.output
    assert "1 events, 1 new, 0 already imported" in result.output
    assert ledger(store)[("pos", "event:E-1")] == 5


def test_import_refuses_hostile_input_with_exit_2_and_no_traceback(
    config: Path, store: Store, tmp_path: Path
) -> None:
    header = "connection,customer_id,event_id,kind,points,occurred_at\n"
    good = tmp_path / "good.csv"
    good.write_text(header + "pos,m1,E-1,earn,5,2025-04-01 10:00\n", encoding="utf-8")
    result = run(config, "import", str(good), "--timezone", "Mars/Base")
    assert result.exit_code == 2
    assert "unknown timezone 'Mars/Base'" in result.output
    for name, text in [
        ("huge.csv", header + "pos,m1,E-1,earn,99999999999999999999,2025-04-01 10:00\n"),
        ("nul.csv", header + "pos,m\x001,E-1,earn,5,2025-04-01 10:00\n"),
    ]:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        result = run(config, "import", str(path))
        assert result.exit_code == 2, result.output
        assert f"{path}:2:" in result.output and "Traceback" not in result.output
    euc = tmp_path / "euc.csv"
    euc.write_bytes(
        (header + "pos,m1,E-1,earn,5,2025-04-01 10:00,\n").encode() + "東京".encode("euc_jp")
    )
    result = run(config, "import", str(euc), "--encoding", "shift_jis")
    assert result.exit_code == 2 and f"{euc}:" in result.output
    assert not [key for key in ledger(store) if key[1].startswith("event:")]


def test_reconcile_exits_1_on_a_difference_and_0_without(config: Path, store: Store) -> None:
    result = run(config, "reconcile")
    assert result.exit_code == 1
    assert "1 of 1 balances differ (own entries)" in result.output
    assert ["1", "pos", "m1", "45", "40", "+5"] in [
        line.split() for line in result.output.splitlines()
    ]
    write(store, "pos", customer("m1", points=40, updated=T0 + dt.timedelta(days=1)))
    result = run(config, "reconcile")
    assert result.exit_code == 0, result.output
    assert "1 reported balances checked against the ledger (own entries): no difference" in (
        result.output
    )


def test_expire(config: Path, store: Store) -> None:
    _old_order(store)
    result = run(config, "expire")
    assert result.exit_code == 0, result.output
    assert "30 points expired (1 entries)" in result.output
    assert "0 points expired (0 entries)" in run(config, "expire").output
    shown = run(config, "balance", "1").output
    assert ["total", "50"] in [line.split() for line in shown.splitlines()]


def test_points_past_their_date_never_show_or_spend_before_an_expiry_run(
    config: Path, store: Store
) -> None:
    _old_order(store)  # its 30 points are in the ledger, unexpired by any run
    shown = run(config, "balance", "1").output
    lines = [line.split() for line in shown.splitlines()]
    assert ["ec", "10"] in lines and ["total", "50"] in lines
    listed = run(config, "history", "1").output
    assert "3 entries, balance 50 (30 of them past their expiry date)" in listed
    refused = run(config, "redeem", "1", "51")
    assert refused.exit_code == 1
    assert "profile 1 has 50 points; cannot redeem 51" in refused.output
    spent = run(config, "redeem", "1", "50")
    assert spent.exit_code == 0 and "balance now 0" in spent.output
    assert ledger(store)[("ec", "expire:earn:old")] == -30  # expired before the spend
