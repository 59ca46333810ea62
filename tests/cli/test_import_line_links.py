"""`omnicrm import line-links`: LINE user ids linked to a shop's customers from a CSV
file, the whole file or nothing, consent left as recorded."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select

from omnicrm.cli import cli
from omnicrm.core.consent import consent_of
from omnicrm.core.records import Medium
from omnicrm.core.store import Store
from omnicrm.core.store.schema import address_links
from omnicrm.crm.schema import profiles
from tests.engage.conftest import build, person

U1 = "U" + "1" * 32
U2 = "U" + "2a" * 16
U3 = "U" + "3" * 32


@pytest.fixture
def config(store_url: str, tmp_path: Path) -> Path:
    store = Store.open(store_url)
    build(store, [person(1, member_code="M-1"), person(2, phone="090-1234-5678"), person(3)])
    store.close()
    path = tmp_path / "omnicrm.toml"
    path.write_text(f'[store]\nurl = "{store_url}"\n', encoding="utf-8")
    return path


def run(config: Path, file: Path) -> Result:
    return CliRunner().invoke(
        cli,
        ["--config", str(config), "import", "line-links", str(file), "--shop", "default"],
        catch_exceptions=False,
    )


def links(store_url: str) -> dict[str, tuple[str, str, str]]:
    store = Store.open(store_url)
    try:
        with store.engine.connect() as conn:
            a = address_links.c
            rows = conn.execute(select(a.address, a.connection, a.record_id, a.method))
            return {address: (c, r, m) for address, c, r, m in rows}
    finally:
        store.close()


def profile_id(store_url: str, email: str) -> int:
    store = Store.open(store_url)
    try:
        with store.engine.connect() as conn:
            found: int = conn.execute(
                select(profiles.c.id).where(profiles.c.email == email)
            ).scalar_one()
            return found
    finally:
        store.close()


def test_links_by_each_key_and_grants_no_consent(
    config: Path, store_url: str, tmp_path: Path
) -> None:
    third = profile_id(store_url, "p3@example.jp")
    file = tmp_path / "links.csv"
    file.write_text(
        "line_user_id,email,phone,member_code,profile_id\n"
        f"{U1},,,M-1,\n"
        f"{U2},,09012345678,,\n"
        f"{U3},,,,{third}\n",
        encoding="utf-8",
    )
    done = run(config, file)
    assert done.exit_code == 0, done.output
    assert "3 row(s) - 3 linked, 0 moved from another customer, 0 unchanged" in done.output
    assert links(store_url) == {
        U1: ("web", "C1", "import"),
        U2: ("web", "C2", "import"),
        U3: ("web", "C3", "import"),
    }
    store = Store.open(store_url)
    try:
        with store.engine.connect() as conn:
            verdict = consent_of(
                conn, shop="default", members=[("web", "C1")], medium=Medium.LINE, address=U1
            )
        assert not verdict.allowed  # a link is no opt-in
    finally:
        store.close()
    # Again: nothing changes; a user id moved to another customer is counted so.
    file.write_text(
        f"line_user_id,email\n{U1},p1@example.jp\n{U2},p3@example.jp\n", encoding="utf-8"
    )
    again = run(config, file)
    assert again.exit_code == 0, again.output
    assert "2 row(s) - 0 linked, 1 moved from another customer, 1 unchanged" in again.output
    assert links(store_url)[U2] == ("web", "C3", "import")


def test_every_bad_row_is_listed_and_nothing_is_linked(
    config: Path, store_url: str, tmp_path: Path
) -> None:
    file = tmp_path / "bad.csv"
    file.write_text(
        "line_user_id,email,member_code\n"
        f"{U1},p1@example.jp,\n"  # good, but not written: the file has bad rows
        f"u{'1' * 32},p2@example.jp,\n"  # lower-case u
        f"{'U' + 'G' * 32},p2@example.jp,\n"  # not hex
        f"{U2},nobody@example.jp,\n"  # no such customer
        f"{U3},,\n"  # no customer named
        f"{U1},p3@example.jp,\n"  # the same user id again
        f"{U3},,M-404\n"  # no such member code
        f",p3@example.jp,\n",  # no user id
        encoding="utf-8",
    )
    done = run(config, file)
    assert done.exit_code == 1
    out = " ".join(done.output.split())
    name = str(file)
    for where in (
        f"{name}:3:line_user_id: not a LINE user id",
        f"{name}:4:line_user_id: not a LINE user id",
        f"{name}:5:email: no customer of shop default: no profile has email nobody@example.jp",
        f"{name}:6: no customer: give one of profile_id, email, phone, member_code",
        f"{name}:7:line_user_id: repeats line 2",
        f"{name}:8:member_code: no customer of shop default: member code M-404 is no profile's",
        f"{name}:9:line_user_id: a value is required",
    ):
        assert where in out, out
    assert "8 problem(s); nothing was imported" in out
    assert links(store_url) == {}


def test_a_file_without_a_customer_column_is_refused_at_its_header(
    config: Path, store_url: str, tmp_path: Path
) -> None:
    file = tmp_path / "header.csv"
    file.write_text(f"line_user_id,name\n{U1},花子\n", encoding="utf-8")
    done = run(config, file)
    assert done.exit_code == 1
    assert f"{file}:1:name: unknown column" in " ".join(done.output.split())
    assert links(store_url) == {}
