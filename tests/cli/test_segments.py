"""``omnicrm segments``: listing with counts, show, add, remove and check."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from omnicrm.cli import cli
from omnicrm.core.channels import DEFAULT_SHOP
from omnicrm.core.store import Store
from omnicrm.crm.segments import define, ensure_builtin, record_counts
from tests.crm.segments.profiles import add_profile, jst


@pytest.fixture(autouse=True)
def _wide(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")


@pytest.fixture
def config(store: Store, store_url: str, tmp_path: Path) -> Path:
    """A config on a store with three profiles, one of them in Tokyo."""
    with store.engine.begin() as conn:
        add_profile(
            conn,
            {"tag": ["vip"]},
            family_name="山田",
            given_name="花子",
            email="hanako@example.jp",
            prefecture="東京都",
            number_of_orders=3,
            amount_spent=24000.0,
            last_order_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=3),
            channel_mix="both",
            lifecycle_stage="repeat",
        )
        add_profile(conn, prefecture="大阪府")
        add_profile(conn)
    path = tmp_path / "omnicrm.toml"
    path.write_text(f'[store]\nurl = "{store_url}"\n', encoding="utf-8")
    return path


def run(config: Path, *args: str) -> Result:
    return CliRunner().invoke(
        cli, ["--config", str(config), "segments", *args], catch_exceptions=False
    )


def test_the_list_shows_every_segment_and_says_when_none_was_counted(config: Path) -> None:
    result = run(config)
    assert result.exit_code == 0, result.output
    for name in ("rfm:champions", "rfm:potential-loyalist", "lifecycle:lapsed", "channel:both"):
        assert name in result.output
    assert "no counts recorded yet" in result.output


def test_the_list_shows_the_last_count_and_its_change(config: Path, store: Store) -> None:
    with store.engine.begin() as conn:
        ensure_builtin(conn, shop=DEFAULT_SHOP)
        define(conn, "tokyo", "prefecture = '東京都'", shop=DEFAULT_SHOP)
        record_counts(conn, {"tokyo": 4, "channel:both": 9}, jst(2024, 5, 1, 9), shop=DEFAULT_SHOP)
        record_counts(conn, {"tokyo": 7, "channel:both": 5}, jst(2024, 5, 1, 10), shop=DEFAULT_SHOP)
    lines = run(config).output.splitlines()
    tokyo = next(line for line in lines if line.strip().startswith("tokyo"))
    assert tokyo.split()[-4:] == ["7", "+3", "2024-05-01", "10:00"]
    both = next(line for line in lines if line.strip().startswith("channel:both"))
    assert both.split()[-4:] == ["5", "-4", "2024-05-01", "10:00"]
    live = run(config, "--live").output.splitlines()
    tokyo = next(line for line in live if line.strip().startswith("tokyo"))
    assert tokyo.split()[-5:] == ["1", "7", "+3", "2024-05-01", "10:00"]  # 1 now


def test_add_show_and_remove_a_segment(config: Path) -> None:
    added = run(
        config,
        "add",
        "tokyo-vip",
        "prefecture = '東京都' AND customer_tags CONTAINS 'vip'",
        "-d",
        "VIPs in Tokyo",
    )
    assert added.exit_code == 0, added.output
    assert "added tokyo-vip: 1 profiles now" in added.output
    # The count shows in the list at once, not '-' until the next refresh.
    listed = next(line for line in run(config).output.splitlines() if "tokyo-vip" in line)
    assert listed.split()[2] == "1", listed
    shown = run(config, "show", "tokyo-vip")
    assert shown.exit_code == 0, shown.output
    assert "expression:  prefecture = '東京都' AND customer_tags CONTAINS 'vip'" in shown.output
    assert "description: VIPs in Tokyo" in shown.output
    assert "count now:   1" in shown.output
    assert "山田 花子" in shown.output and "hanako@example.jp" in shown.output
    assert "tokyo-vip" in run(config).output
    removed = run(config, "remove", "tokyo-vip")
    assert removed.exit_code == 0 and "removed tokyo-vip" in removed.output
    assert "tokyo-vip" not in run(config).output


def test_show_a_builtin_with_no_members(config: Path) -> None:
    shown = run(config, "show", "rfm:champions", "--limit", "5")
    assert shown.exit_code == 0, shown.output
    assert "rfm:champions (built-in): Champions" in shown.output
    assert "expression:  rfm_group = champions" in shown.output
    assert "no members" in shown.output


def test_a_bad_expression_exits_2_with_the_caret(config: Path) -> None:
    result = run(config, "add", "big", "amount_spent >> 100")
    assert result.exit_code == 2
    assert "error: > does not apply" not in result.output  # the message is about the token
    assert "  amount_spent >> 100\n" in result.output
    assert "\n                ^\n" in result.output
    checked = run(config, "check", "last_order_date > 30d")
    assert checked.exit_code == 2
    assert "bad date '30d': write -30d for the past" in checked.output
    assert "  last_order_date > 30d\n                    ^^^\n" in checked.output
    assert "big" not in run(config).output  # nothing defined


def test_check_counts_a_good_expression(config: Path) -> None:
    result = run(config, "check", "prefecture IS NOT NULL")
    assert result.exit_code == 0, result.output
    assert "valid: 2 of 3 profiles match now" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("add", "rfm:champions", "age > 1"), "'rfm:champions' is a built-in segment"),
        (("add", "Tokyo VIP", "age > 1"), "bad segment name 'Tokyo VIP'"),
        (("remove", "rfm:lost"), "built-in segment and cannot be removed"),
        (
            ("remove", "rfm:champion"),
            "no segment named 'rfm:champion' (did you mean rfm:champions?)",
        ),
        (("show", "nobody"), "no segment named 'nobody'"),
        (("show", "rfm:lost", "--limit", "-1"), "--limit must be 0 or more"),
    ],
)
def test_bad_names_exit_2(config: Path, args: tuple[str, ...], message: str) -> None:
    result = run(config, *args)
    assert result.exit_code == 2
    assert message in result.output


@pytest.fixture
def two_shops(store: Store, store_url: str, tmp_path: Path) -> Path:
    """Two shops whose customers are the same people (same names, emails, places), and
    one more customer in the second shop."""
    with store.engine.begin() as conn:
        for shop in ("tokyo-tea", "osaka-sweets"):
            add_profile(
                conn,
                {"tag": ["vip"]},
                shop=shop,
                family_name="山田",
                given_name="花子",
                email="hanako@example.jp",
                prefecture="東京都",
                number_of_orders=3,
                last_order_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=3),
                lifecycle_stage="repeat",
            )
            add_profile(conn, shop=shop, prefecture="大阪府")
        add_profile(conn, shop="osaka-sweets", prefecture="東京都", email="jiro@example.jp")
    path = tmp_path / "omnicrm.toml"
    path.write_text(
        f'[store]\nurl = "{store_url}"\n\n'
        '[shops.tokyo-tea]\nname = "Tokyo Tea"\n\n'
        '[shops.osaka-sweets]\nname = "Osaka Sweets"\n',
        encoding="utf-8",
    )
    return path


def test_with_two_shops_each_command_works_within_the_one_named(two_shops: Path) -> None:
    for args in ((), ("show", "rfm:lost"), ("check", "age > 1"), ("add", "x", "age > 1")):
        result = run(two_shops, *args)
        assert result.exit_code == 2, (args, result.output)
        assert "name one with --shop (osaka-sweets, tokyo-tea)" in result.output
    unknown = run(two_shops, "--shop", "kyoto", "check", "age > 1")
    assert unknown.exit_code == 2 and "no shop named 'kyoto'" in unknown.output

    tokyo = "prefecture = '東京都'"
    added = run(two_shops, "add", "tokyo", tokyo, "--shop", "tokyo-tea")
    assert added.exit_code == 0, added.output
    assert "added tokyo: 1 profiles now" in added.output  # not the other shop's 2
    # The group's --shop serves its commands too.
    assert (
        "valid: 2 of 3 profiles" in run(two_shops, "--shop", "osaka-sweets", "check", tokyo).output
    )
    assert "valid: 1 of 2 profiles" in run(two_shops, "check", tokyo, "--shop", "tokyo-tea").output

    assert "tokyo" in run(two_shops, "--shop", "tokyo-tea").output.split()
    assert "tokyo" not in run(two_shops, "--shop", "osaka-sweets").output.split()
    missing = run(two_shops, "show", "tokyo", "--shop", "osaka-sweets")
    assert missing.exit_code == 2 and "no segment named 'tokyo'" in missing.output
    # The same name in the other shop is that shop's own segment.
    other = run(
        two_shops,
        "add",
        "tokyo",
        "number_of_orders = 0 AND prefecture = '東京都'",
        "--shop",
        "osaka-sweets",
    )
    assert "added tokyo: 1 profiles now" in other.output
    shown = run(two_shops, "show", "tokyo", "--shop", "osaka-sweets")
    assert "jiro@example.jp" in shown.output and "hanako" not in shown.output
    removed = run(two_shops, "remove", "tokyo", "--shop", "tokyo-tea")
    assert removed.exit_code == 0, removed.output
    assert "tokyo" in run(two_shops, "--shop", "osaka-sweets").output.split()
