"""``omnicrm customers``: explain, merges, unmerge and link."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select

from omnicrm.cli._common import Context
from omnicrm.cli.customers import customers
from omnicrm.core.channels import DEFAULT_SHOP, Stream
from omnicrm.core.records import Customer
from omnicrm.core.store import Store
from omnicrm.core.store.schema import profile_changes
from omnicrm.crm.identity import IdentitySettings, resolve_all
from omnicrm.crm.schema import profile_members

T0 = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
HANAKO = {"family_name": "山田", "given_name": "花子"}


@pytest.fixture(autouse=True)
def _wide(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")


@pytest.fixture
def config(store: Store, store_url: str, tmp_path: Path) -> Path:
    """Three records of 山田花子 joined by a phone and an email, and 佐藤太郎 alone."""
    store.write_batch(
        "ec",
        Stream.CUSTOMERS,
        [
            Customer(
                id="gid://shopify/Customer/1",
                email="hanako@example.jp",
                phone="090-1111-2222",
                updated_at=T0,
                **HANAKO,
            ),
            Customer(
                id="gid://shopify/Customer/2",
                email="taro@example.jp",
                family_name="佐藤",
                given_name="太郎",
                updated_at=T0,
            ),
        ],
    )
    store.write_batch(
        "store",
        Stream.CUSTOMERS,
        [
            Customer(
                id="P1", phone="09011112222", email="hanako@example.jp", updated_at=T0, **HANAKO
            ),
            Customer(id="P2", phone="090-1111-2222", updated_at=T0, **HANAKO),
        ],
    )
    with store.engine.begin() as conn:
        resolve_all(conn, IdentitySettings(), T0, shop=DEFAULT_SHOP)
    path = tmp_path / "omnicrm.toml"
    path.write_text(f'[store]\nurl = "{store_url}"\n', encoding="utf-8")
    return path


def run(config: Path, *args: str) -> Result:
    return CliRunner().invoke(customers, list(args), obj=Context(config), catch_exceptions=False)


def profile_of(store: Store, connection: str, record_id: str) -> int:
    with store.engine.connect() as conn:
        return int(
            conn.execute(
                select(profile_members.c.profile_id).where(
                    profile_members.c.connection == connection,
                    profile_members.c.record_id == record_id,
                )
            ).scalar_one()
        )


def test_explain_lists_members_merges_and_reasons(store: Store, config: Path) -> None:
    pid = profile_of(store, "store", "P1")
    result = run(config, "explain", str(pid))
    assert result.exit_code == 0, result.output
    out = result.output
    assert f"profile {pid}: 3 source record(s)" in out
    assert "gid://shopify/Customer/1" in out and "P2" in out and "山田 花子" in out
    assert "phone +819011112222; names agree" in out
    assert "email hanako@example.jp, phone +819011112222; names agree" in out


def test_unknown_ids_exit_2(config: Path) -> None:
    result = run(config, "explain", "999")
    assert result.exit_code == 2 and "no profile 999" in result.output
    result = run(config, "unmerge", "store", "P404")
    assert result.exit_code == 2 and "no source customer store:P404" in result.output
    result = run(config, "link", "store:P1", "ec:nope")
    assert result.exit_code == 2 and "no source customer ec:nope" in result.output
    result = run(config, "link", "P1", "ec:1")
    assert result.exit_code == 2 and "is not CONNECTION:ID" in result.output
    result = run(config, "unmerge", "ec", "gid://shopify/Customer/2")
    assert result.exit_code == 2 and "alone in its profile" in result.output


def test_merges_lists_the_latest_with_reasons(config: Path) -> None:
    result = run(config, "merges")
    assert result.exit_code == 0, result.output
    assert result.output.count("names agree") == 2


def test_unmerge_then_link_back(store: Store, config: Path) -> None:
    pid = profile_of(store, "store", "P1")
    result = run(config, "unmerge", "store", "P2", "--note", "a colleague's card")
    assert result.exit_code == 0, result.output
    assert "store:P2 unmerged" in result.output
    assert profile_of(store, "store", "P2") != pid == profile_of(store, "store", "P1")
    with store.engine.connect() as conn:
        assert conn.execute(select(profile_changes)).first() is None  # the refresh ran
    assert "a colleague's card" in run(config, "explain", str(pid)).output

    result = run(config, "link", "store:P2", "ec:gid://shopify/Customer/1", "--note", "checked")
    assert result.exit_code == 0, result.output
    assert "store:P2 and ec:gid://shopify/Customer/1 linked" in result.output
    assert profile_of(store, "store", "P2") == pid
    assert "linked by an operator" in run(config, "explain", str(pid)).output
