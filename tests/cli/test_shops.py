"""``omnicrm shops``: each client shop with its connections, profiles, last sync and
segment count, read from the store by the shop column; both backends."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import insert

from omnicrm.cli import cli
from omnicrm.core.channels import Stream
from omnicrm.core.records import Customer
from omnicrm.core.store import RunStatus, Store
from omnicrm.crm.schema import profiles, segments

NOW = dt.datetime(2026, 12, 1, 0, 30, tzinfo=dt.UTC)

CONFIG = """\
[store]
url = "{url}"

[shops.tokyo-tea]
name = "東京茶舗"

[shops.hawaii-coffee]
name = "Hawaii Coffee"
timezone = "Pacific/Honolulu"
currency = "USD"

[shops.empty-shop]

[connections.tea-pos]
channel = "synthetic"
shop = "tokyo-tea"

[connections.tea-ec]
channel = "synthetic"
shop = "tokyo-tea"

[connections.coffee-ec]
channel = "synthetic"
shop = "hawaii-coffee"
"""


def _fill(url: str) -> None:
    shops = {"tea-pos": "tokyo-tea", "tea-ec": "tokyo-tea", "coffee-ec": "hawaii-coffee"}
    store = Store.open(url, shops=shops)
    try:
        for connection in shops:
            customer = Customer(id="c1", updated_at=NOW, family_name="山田")
            store.write_batch(connection, Stream.CUSTOMERS, [customer])
        with store.engine.begin() as conn:
            # Three people in tokyo-tea, two in hawaii-coffee (the CRM's rows, by shop).
            for shop, count in (("tokyo-tea", 3), ("hawaii-coffee", 2)):
                for _ in range(count):
                    conn.execute(insert(profiles).values(shop=shop, updated_at=NOW))
            for shop, names in (("tokyo-tea", ["vip", "lapsed"]), ("hawaii-coffee", ["vip"])):
                for name in names:
                    conn.execute(
                        insert(segments).values(
                            shop=shop, name=name, expression="x", builtin=False, created_at=NOW
                        )
                    )
        run = store.start_run("tea-pos", trigger="manual")
        store.finish_run(run, RunStatus.COMPLETE)
        run = store.start_run("tea-ec", trigger="manual")
        store.finish_run(run, RunStatus.FAILED, error="boom")
        run = store.start_run("coffee-ec", trigger="manual")
        store.finish_run(run, RunStatus.COMPLETE)
    finally:
        store.close()


def _rows(output: str) -> dict[str, list[str]]:
    """Each shop's cells, from the table drawn wide enough for every column."""
    found: dict[str, list[str]] = {}
    for line in output.splitlines():
        cells = [c.strip() for c in re.split(r"\s{2,}", line.strip())]
        if cells and cells[0] in ("tokyo-tea", "hawaii-coffee", "empty-shop"):
            found[cells[0]] = cells
    return found


def test_shops_shows_each_shops_connections_profiles_last_sync_and_segments(
    store_url: str, tmp_path: Path, synthetic_installed: Path
) -> None:
    _fill(store_url)
    path = tmp_path / "omnicrm.toml"
    path.write_text(CONFIG.format(url=store_url), encoding="utf-8")
    result = CliRunner(env={"COLUMNS": "220"}).invoke(cli, ["--config", str(path), "shops"])
    assert result.exit_code == 0, result.output
    rows = _rows(result.output)
    tea, coffee, empty = rows["tokyo-tea"], rows["hawaii-coffee"], rows["empty-shop"]
    assert tea[1:5] == ["東京茶舗", "Asia/Tokyo", "JPY", "tea-ec, tea-pos"]
    assert tea[5] == "3" and tea[6] == "failed: tea-ec" and tea[7] == "2"
    assert coffee[1:6] == ["Hawaii Coffee", "Pacific/Honolulu", "USD", "coffee-ec", "2"]
    # Its last run, in the shop's own zone.
    assert coffee[6].startswith("complete ") and coffee[6].endswith(" HST") and coffee[7] == "1"
    assert empty[1:] == ["empty-shop", "Asia/Tokyo", "JPY", "-", "0", "never synced", "0"]


def test_a_shop_the_config_dropped_still_shows_with_its_customers(
    store_url: str, tmp_path: Path, synthetic_installed: Path
) -> None:
    _fill(store_url)
    path = tmp_path / "omnicrm.toml"
    path.write_text(f'[store]\nurl = "{store_url}"\n[shops.tokyo-tea]\n', encoding="utf-8")
    result = CliRunner(env={"COLUMNS": "220"}).invoke(cli, ["--config", str(path), "shops"])
    assert result.exit_code == 0, result.output
    assert "hawaii-coffee" in result.output and "(not in the config)" in result.output
    assert "coffee-ec" in result.output


# -- omnicrm shops rename --------------------------------------------------------------


def test_a_store_used_before_its_shop_was_named_is_renamed_to_the_configs_shop(
    store_url: str, tmp_path: Path, synthetic_installed: Path
) -> None:
    # Used without [shops]: its customers and profiles are the implicit shop 'default'.
    store = Store.open(store_url)
    try:
        store.write_batch("tea-pos", Stream.CUSTOMERS, [Customer(id="c1", updated_at=NOW)])
        with store.engine.begin() as conn:
            conn.execute(insert(profiles).values(shop="default", updated_at=NOW))
    finally:
        store.close()
    path = tmp_path / "omnicrm.toml"
    path.write_text(
        f'[store]\nurl = "{store_url}"\n[shops.tokyo-tea]\nname = "東京茶舗"\n'
        '[connections.tea-pos]\nchannel = "synthetic"\n',
        encoding="utf-8",
    )
    runner = CliRunner(env={"COLUMNS": "220"})

    refused = runner.invoke(cli, ["--config", str(path), "shops"])
    assert refused.exit_code == 2
    flat = " ".join(refused.output.split())
    assert "the store holds shop 'default'; the config names 'tokyo-tea'" in flat
    assert "run `omnicrm shops rename default tokyo-tea`" in flat

    # A typo of the new id, or an old id the store does not hold: refused, nothing moved.
    typo = runner.invoke(cli, ["--config", str(path), "shops", "rename", "default", "tokio-tea"])
    assert typo.exit_code == 2
    assert "no shop named 'tokio-tea' (shops: tokyo-tea)" in " ".join(typo.output.split())
    unknown = runner.invoke(cli, ["--config", str(path), "shops", "rename", "kyoto", "tokyo-tea"])
    assert unknown.exit_code == 2
    flat = " ".join(unknown.output.split())
    assert "no shop 'kyoto' (the store's shops: default)" in flat

    renamed = runner.invoke(cli, ["--config", str(path), "shops", "rename", "default", "tokyo-tea"])
    assert renamed.exit_code == 0, renamed.output
    assert "shop 'default' is now 'tokyo-tea'" in renamed.output

    shown = runner.invoke(cli, ["--config", str(path), "shops"])
    assert shown.exit_code == 0, shown.output
    rows = _rows(shown.output)
    assert rows["tokyo-tea"][1] == "東京茶舗" and rows["tokyo-tea"][4:6] == ["tea-pos", "1"]
    assert "default" not in shown.output

    again = runner.invoke(cli, ["--config", str(path), "shops", "rename", "default", "tokyo-tea"])
    assert again.exit_code == 2
    assert "already holds data" in " ".join(again.output.split())
