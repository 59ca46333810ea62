"""``omnicrm crm refresh`` and ``omnicrm customers`` with two shops holding the same
people: each command works within the shop it is given and shows nothing of the other."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select

from omnicrm.cli import cli
from omnicrm.core.channels import Stream
from omnicrm.core.records import Customer
from omnicrm.core.store import Store
from omnicrm.crm.schema import profile_members

T0 = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
HANAKO = {
    "email": "hanako@example.jp",
    "phone": "090-1111-2222",
    "family_name": "山田",
    "given_name": "花子",
}


@pytest.fixture(autouse=True)
def _wide(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")


@pytest.fixture
def config(store_url: str, tmp_path: Path) -> Path:
    """Shops a and b, each with Hanako online and in its store (one email, one phone)
    and Taro online; not refreshed yet."""
    store = Store.open(store_url, shops={"a-ec": "a", "a-pos": "a", "b-ec": "b", "b-pos": "b"})
    for shop in ("a", "b"):
        store.write_batch(
            f"{shop}-ec",
            Stream.CUSTOMERS,
            [
                Customer(id="1", updated_at=T0, **HANAKO),
                Customer(id="2", email="taro@example.jp", family_name="佐藤", updated_at=T0),
            ],
        )
        store.write_batch(
            f"{shop}-pos", Stream.CUSTOMERS, [Customer(id="P1", updated_at=T0, **HANAKO)]
        )
    store.close()
    path = tmp_path / "omnicrm.toml"
    shops = '[shops.a]\nname = "Shop A"\n\n[shops.b]\nname = "Shop B"\n'
    path.write_text(f'[store]\nurl = "{store_url}"\n\n{shops}', encoding="utf-8")
    return path


def run(config: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--config", str(config), *args])


def profile_of(store_url: str, connection: str, record_id: str) -> int:
    store = Store(store_url)
    try:
        with store.engine.connect() as conn:
            return int(
                conn.execute(
                    select(profile_members.c.profile_id).where(
                        profile_members.c.connection == connection,
                        profile_members.c.record_id == record_id,
                    )
                ).scalar_one()
            )
    finally:
        store.close()


def refreshed(config: Path) -> None:
    for shop in ("a", "b"):
        result = run(config, "crm", "refresh", "--shop", shop)
        assert result.exit_code == 0, result.output
        assert "2 profile(s) updated" in result.output


@pytest.mark.parametrize(
    "args",
    [
        ("crm", "refresh"),
        ("customers", "find", "hanako"),
        ("customers", "show", "1"),
        ("customers", "explain", "1"),
        ("customers", "merges"),
        ("customers", "unmerge", "a-pos", "P1"),
        ("customers", "link", "a-ec:1", "a-ec:2"),
    ],
)
def test_without_a_shop_each_command_exits_2_naming_the_shops(
    config: Path, args: tuple[str]
) -> None:
    result = run(config, *args)
    assert result.exit_code == 2, result.output
    assert "2 shops are configured: name one with --shop (a, b)" in result.output
    result = run(config, *args, "--shop", "c")
    assert result.exit_code == 2, result.output
    assert "no shop named 'c' (shops: a, b)" in result.output


def test_each_shop_refreshes_finds_and_shows_its_own_customers(
    config: Path, store_url: str
) -> None:
    refreshed(config)
    a_hanako = profile_of(store_url, "a-ec", "1")
    b_hanako = profile_of(store_url, "b-ec", "1")
    assert a_hanako != b_hanako
    for shop, own, other in (("a", a_hanako, b_hanako), ("b", b_hanako, a_hanako)):
        found = run(config, "customers", "find", "hanako@example.jp", "--shop", shop)
        assert found.exit_code == 0, found.output
        ids = re.findall(r"^\s*(\d+)\s+山田", found.output, re.MULTILINE)
        assert ids == [str(own)], found.output
        shown = run(config, "customers", "show", str(own), "--shop", shop)
        assert shown.exit_code == 0, shown.output
        assert f"{shop}-ec" in shown.output and f"{shop}-pos" in shown.output
        assert ("b-ec" if shop == "a" else "a-ec") not in shown.output
        # The other shop's person, by their id: not in this shop.
        for command in ("show", "explain"):
            result = run(config, "customers", command, str(other), "--shop", shop)
            assert result.exit_code == 2, result.output
            assert f"no profile {other} in shop '{shop}'" in result.output
        explained = run(config, "customers", "explain", str(own), "--shop", shop)
        assert explained.exit_code == 0, explained.output
        assert "2 source record(s)" in explained.output
        merges = run(config, "customers", "merges", "--shop", shop)
        assert merges.exit_code == 0, merges.output
        assert f"{shop}-ec:1" in merges.output
        assert ("b-" if shop == "a" else "a-") not in merges.output


def test_links_and_unmerges_across_shops_exit_2_and_change_nothing(
    config: Path, store_url: str
) -> None:
    refreshed(config)
    result = run(config, "customers", "link", "a-ec:2", "b-ec:2", "--shop", "a")
    assert result.exit_code == 2, result.output
    assert (
        "b-ec:2 belongs to shop 'b', not 'a': records of two shops are never one person"
        in " ".join(result.output.split())
    )
    result = run(config, "customers", "unmerge", "b-pos", "P1", "--shop", "a")
    assert result.exit_code == 2, result.output
    assert "b-pos:P1 belongs to shop 'b', not 'a'" in " ".join(result.output.split())
    assert profile_of(store_url, "a-ec", "2") != profile_of(store_url, "b-ec", "2")
    assert profile_of(store_url, "b-pos", "P1") == profile_of(store_url, "b-ec", "1")
    # Within a shop the operator's word holds, and the other shop is left as it was.
    before_b = profile_of(store_url, "b-ec", "2")
    result = run(config, "customers", "link", "a-ec:2", "a-ec:1", "--shop", "a")
    assert result.exit_code == 0, result.output
    assert profile_of(store_url, "a-ec", "2") == profile_of(store_url, "a-ec", "1")
    assert profile_of(store_url, "b-ec", "2") == before_b != profile_of(store_url, "b-ec", "1")
