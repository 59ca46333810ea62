"""``omnicrm import pos-csv``: an export as the connection's records in its shop, the CRM
refreshed after, a run recorded; a bad file exits 1 naming file, line and column and
writes nothing; both backends."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from omnicrm.cli import cli
from omnicrm.core.store import Store
from omnicrm.core.store.schema import customers, orders
from omnicrm.crm.schema import profiles
from tests.plugins.pos.csv.exports import AIRREGI, SMAREGI, write

CONFIG = """\
[store]
url = "{url}"

[shops.tokyo-tea]
name = "東京茶舗"

[shops.osaka-tea]
name = "大阪茶舗"

[connections.shibuya-register]
channel = "pos_csv"
shop = "tokyo-tea"

[connections.shibuya-register.settings]
format = "airregi"

[connections.umeda-register]
channel = "pos_csv"
shop = "osaka-tea"

[connections.umeda-register.settings]
format = "smaregi"
columns = {{ "会員番号" = "member_code" }}
"""


@pytest.fixture
def config(tmp_path: Path, store_url: str) -> Path:
    path = tmp_path / "omnicrm.toml"
    path.write_text(CONFIG.format(url=store_url), encoding="utf-8")
    return path


def _run(config: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["--config", str(config), "import", "pos-csv", *args])
    return result.exit_code, result.stdout, result.stderr


def _counts(url: str) -> dict[str, int]:
    store = Store.open(url)
    try:
        with store.engine.connect() as conn:
            return {
                table.name: int(conn.execute(select(func.count()).select_from(table)).scalar_one())
                for table in (orders, customers, profiles)
            }
    finally:
        store.close()


def test_an_export_becomes_the_connections_records_in_its_shop(
    config: Path, store_url: str, tmp_path: Path
) -> None:
    path = write(tmp_path / "会計明細.csv", AIRREGI, "cp932")
    code, out, err = _run(config, "shibuya-register", str(path))
    assert code == 0, err
    assert "4 receipt(s) of 5 row(s), 2 member(s)" in out
    store = Store.open(store_url)
    try:
        with store.engine.connect() as conn:
            shops = set(conn.execute(select(orders.c.shop)).scalars())
            people = set(conn.execute(select(profiles.c.shop)).scalars())
        assert shops == {"tokyo-tea"} and people == {"tokyo-tea"}  # refreshed: profiles
        (run,) = store.runs("shibuya-register")
        assert (run.trigger, run.status.value) == ("import", "complete")
        assert run.records_written == 6
    finally:
        store.close()

    # Again (a correction of the same day): replaced, not doubled.
    code, _, err = _run(config, "shibuya-register", str(path))
    assert code == 0, err
    assert _counts(store_url)["orders"] == 4


def test_the_format_option_overrides_the_connections(
    config: Path, store_url: str, tmp_path: Path
) -> None:
    path = write(tmp_path / "取引履歴.csv", SMAREGI, "utf-8-sig")
    code, _, err = _run(config, "shibuya-register", str(path), "--format", "smaregi")
    assert code == 0, err
    assert _counts(store_url)["orders"] == 2


def _cut(text: str) -> str:
    lines = text.splitlines()
    lines[4] = lines[4].split(',0,"-1,080"')[0]  # the 返品 row, cut after 数量
    return "\n".join(lines) + "\n"


BAD = {
    # Good receipts first: a bad row late in the file still leaves nothing behind.
    "date": (AIRREGI.replace("16:45:09", "16時45分"), "cp932", ":6:会計時間: not a date or time"),
    "number": (AIRREGI.replace(",648,1,", ",648円也,1,"), "cp932", ":4:単価: not an amount"),
    "column": (AIRREGI.replace("伝票番号", "伝票"), "utf-8", ":1:伝票番号: required column"),
    "short row": (_cut(AIRREGI), "utf-8-sig", ":5:値引き: 11 values, the header has 21"),
    "encoding": (AIRREGI, "euc_jp", ":1: the file looks like EUC-JP"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_a_bad_file_names_line_and_column_and_writes_nothing(
    config: Path, store_url: str, tmp_path: Path, case: str
) -> None:
    text, encoding, problem = BAD[case]
    path = write(tmp_path / "会計明細.csv", text, encoding)
    code, _, err = _run(config, "shibuya-register", str(path))
    assert code == 1
    assert f"{path}{problem}" in err
    assert "not imported" in err
    assert _counts(store_url) == {"orders": 0, "customers": 0, "profiles": 0}


def test_a_connection_of_another_channel_is_refused(config: Path, tmp_path: Path) -> None:
    text = CONFIG.format(url="sqlite:///" + str(tmp_path / "x.db")) + (
        '\n[connections.web]\nchannel = "shopify"\nshop = "tokyo-tea"\n'
        '[connections.web.settings]\ndomain = "tokyo-tea.myshopify.com"\n'
        'access_token = "shpat_x"\n'
    )
    config.write_text(text, encoding="utf-8")
    path = write(tmp_path / "会計明細.csv", AIRREGI, "utf-8")
    code, _, err = _run(config, "web", str(path))
    assert code == 2
    assert "`import pos-csv` takes a pos_csv one" in err
