"""A redacted person leaves nothing behind, and a data request exports all there is.

The person is planted everywhere the product can put them, through its own paths: a
sync from the Shopify sandbox, signed webhooks, ``omnicrm customers link`` with a note,
interaction, NPS and points imports, a points adjustment, a failed run's error and a
data-request export. After a ``customers/redact`` webhook every table of the schema
(found from the metadata, so a new table is searched too) and every file under the data
dir (the SQLite database and its log included) is searched for them.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from omnicrm.app.config import Config, Connection, SchedulerSection
from omnicrm.app.runtime import Runtime
from omnicrm.app.webhook_app import create_app
from omnicrm.cli import cli
from omnicrm.core.channels import DEFAULT_SHOP, Stream
from omnicrm.core.host import Host
from omnicrm.core.records import Customer
from omnicrm.core.store import RunStatus, Store
from omnicrm.core.store.schema import metadata
from omnicrm.crm.identity import IdentitySettings, decide, resolve_all, resolve_pending, suggestions
from omnicrm.crm.profiles import profile_of
from omnicrm.crm.schema import identity_overrides, identity_suggestions
from omnicrm.plugins.shopify import plugin
from omnicrm.plugins.shopify.sandbox import ShopifySandbox
from omnicrm.plugins.shopify.settings import ShopifySettings
from tests.support.http import serve
from tests.support.webhooks import settled

END = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
EMAIL = "mio.ukaino.7731@example.jp"
PHONE = "+819077312468"
PERSON = {
    "firstName": "澪音",
    "lastName": "鵜飼野",
    "email": EMAIL,
    "phone": PHONE,
    "note": "鵜飼野様は平日夜のみ電話可 090-7731-2468",
    "defaultAddress": {
        "id": "gid://shopify/MailingAddress/977312468",
        "firstName": "澪音",
        "lastName": "鵜飼野",
        "address1": "神泉町9-97",
        "address2": "グランメゾン神泉909",
        "city": "渋谷区",
        "province": "東京都",
        "provinceCode": "JP-13",
        "zip": "150-7731",
        "country": "Japan",
        "countryCodeV2": "JP",
        "company": None,
        "phone": PHONE,
    },
}
# Every way the product or an operator may have written them down.
TRACES = [
    EMAIL,
    "mio.ukaino",
    "鵜飼野",
    "澪音",
    "神泉町9-97",
    "グランメゾン神泉",
    "150-7731",
    "1507731",
    "9077312468",
    "7731-2468",
    "7731 2468",
]


@dataclass
class World:
    shop: ShopifySandbox
    runtime: Runtime
    store: Store
    url: str  # the webhook endpoint
    data: Path  # OMNICRM_DATA_DIR
    config: Path  # an omnicrm.toml for the CLI
    person: str  # their customer GID
    other: str  # another customer's GID


@pytest.fixture
def world(store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    data = tmp_path / "data"
    monkeypatch.setenv("OMNICRM_DATA_DIR", str(data))
    # On SQLite the store lives in the data dir, so its files are searched too.
    url = f"sqlite:///{data / 'omnicrm.db'}" if store_url.startswith("sqlite") else store_url
    config = tmp_path / "omnicrm.toml"
    config.write_text(f'[store]\nurl = "{url}"\n', encoding="utf-8")
    with ShopifySandbox(customers=6, seed=11, end=END, restore_rate=40_000) as shop:
        person = shop.create_customer(**PERSON)["id"]
        other = shop.data.customer(0)["id"]
        shop.create_order(person)
        settings = ShopifySettings(**shop.settings())
        connection = Connection("tokyo", "shopify", settings)
        host = Host.load(use_entry_points=False, extra={"shopify": plugin})
        runtime = Runtime(host, Config(None, url, SchedulerSection(), {"tokyo": connection}))
        with serve(create_app(runtime, refresh_delay=0.1)) as app:
            yield World(
                shop, runtime, runtime.store, f"{app}/webhooks/shopify", data, config, person, other
            )
        runtime.close()


def omnicrm(world: World, *args: str) -> str:
    result = CliRunner().invoke(cli, ["--config", str(world.config), *args])
    assert result.exit_code == 0, result.output
    return result.output


def profile_id(world: World, record: str) -> int:
    with world.store.engine.connect() as conn:
        found = profile_of(conn, "tokyo", record, shop=DEFAULT_SHOP)
    assert found is not None
    return found


def plant(world: World, tmp_path: Path) -> Path:
    """Put the person everywhere the product can; returns their data-request export."""
    shop, store = world.shop, world.store
    result = world.runtime.engine().sync(world.runtime.config.connections["tokyo"])
    assert result.status is RunStatus.COMPLETE, result.error
    assert shop.deliver_webhook(world.url, "customers/update", gid=world.person).status_code == 200
    settled(store)  # applied behind the answer
    note = f"{EMAIL} / 090-7731-2468 鵜飼野様のご家族"
    omnicrm(
        world, "customers", "link", f"tokyo:{world.person}", f"tokyo:{world.other}", "--note", note
    )
    files = tmp_path / "in"
    files.mkdir()
    (files / "support.csv").write_text(
        "interaction_id,email,kind,occurred_at,subject,body\n"
        f"I-1,{EMAIL},inquiry,2026-01-05 10:00,鵜飼野 澪音様より,"
        "住所 神泉町9-97 グランメゾン神泉909 へ再送 電話 090-7731-2468\n",
        encoding="utf-8",
    )
    omnicrm(world, "interactions", "import", str(files / "support.csv"), "--source", "zendesk")
    (files / "nps.csv").write_text(
        f"response_id,email,score,responded_at,comment\nR-1,{EMAIL},9,2026-01-06,鵜飼野澪音です\n",
        encoding="utf-8",
    )
    omnicrm(world, "nps", "import", str(files / "nps.csv"), "--source", "survey")
    (files / "points.csv").write_text(
        "connection,customer_id,event_id,kind,points,occurred_at,note\n"
        f"tokyo,{world.person},P-1,earn,120,2026-01-07 10:00,鵜飼野様 来店\n",
        encoding="utf-8",
    )
    omnicrm(world, "points", "import", str(files / "points.csv"))
    pid = str(profile_id(world, world.person))
    omnicrm(world, "points", "adjust", pid, "50", "--note", f"{EMAIL} 様へお詫び")
    for path in files.iterdir():
        path.unlink()
    # A failed run's error as versions that quoted record values stored it.
    run = store.start_run("tokyo", trigger="schedule")
    store.finish_run(
        run,
        RunStatus.FAILED,
        errors=1,
        error=f"DataError: the store refused a customers record: ('{EMAIL}', '{PHONE}', '鵜飼野')",
        error_kind="data",
    )
    sent = shop.deliver_webhook(world.url, "customers/data_request", gid=world.person)
    settled(store)
    assert sent.status_code == 200, sent.text
    (export,) = (world.data / "exports" / "tokyo").iterdir()
    return export


def traces_in_tables(store: Store) -> dict[str, set[str]]:
    """The person's traces found in each table of the schema."""
    found: dict[str, set[str]] = {}
    with store.engine.connect() as conn:
        for table in metadata.sorted_tables:
            for row in conn.execute(select(table)):
                text = " ".join(_text(value) for value in row).lower()
                hits = {t for t in TRACES if t.lower() in text}
                if hits:
                    found.setdefault(table.name, set()).update(hits)
    return found


def _text(value: Any) -> str:
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def traces_in_files(root: Path) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in root.rglob("*"):
        if path.is_file():
            content = path.read_bytes().lower()
            hits = {t for t in TRACES if t.lower().encode() in content}
            if hits:
                found[str(path.relative_to(root))] = hits
    return found


def test_a_redaction_leaves_nothing_of_the_person_anywhere(world: World, tmp_path: Path) -> None:
    export = plant(world, tmp_path)
    planted = traces_in_tables(world.store)
    expected = {
        "customers",
        "profiles",
        "identity_keys",
        "identity_overrides",
        "interactions",
        "nps_responses",
        "points_entries",
        "sync_runs",
    }
    assert expected <= set(planted), planted  # the plant took: the search can see them
    assert str(export.relative_to(world.data)) in traces_in_files(world.data)

    redacted = world.shop.deliver_webhook(world.url, "customers/redact", gid=world.person)
    assert redacted.status_code == 200, redacted.text

    assert traces_in_tables(world.store) == {}
    assert traces_in_files(world.data) == {}
    # What is not theirs stays: the other customer, the shop's sales, the run history.
    customers = {c.id for c in world.store.customers("tokyo")}
    assert world.other in customers and world.person not in customers
    assert len(list(world.store.orders("tokyo"))) > 0
    assert any(r.error and "[redacted]" in r.error for r in world.store.runs("tokyo"))


def test_a_data_request_exports_all_the_store_holds(world: World, tmp_path: Path) -> None:
    export = plant(world, tmp_path)
    data = json.loads(export.read_text(encoding="utf-8"))
    assert data["customer_id"] == world.person and data["customer"]["email"] == EMAIL
    assert data["orders"] and all(o["customer_id"] == world.person for o in data["orders"])
    assert {c["medium"] for c in data["consents"]} >= {"email"}
    assert data["profile"]["email"] == EMAIL
    assert {"connection": "tokyo", "record_id": world.person} in data["profile"]["members"]
    assert {"kind": "email", "value": EMAIL} in data["identity_keys"]
    events = {e["event_id"].split(":", 1)[0] for e in data["points_entries"]}
    assert {"earn", "event", "adjust"} <= events  # from the order, the CSV, the operator
    assert [i["external_id"] for i in data["interactions"]] == ["I-1"]
    assert [(a["external_id"], a["comment"]) for a in data["nps_answers"]] == [
        ("R-1", "鵜飼野澪音です")
    ]
    assert [o["kind"] for o in data["identity_overrides"]] == ["link"]
    # Exports are the operator's alone, from the moment they exist.
    assert export.stat().st_mode & 0o777 == 0o600
    assert export.parent.stat().st_mode & 0o777 == 0o700
    assert (world.data / "exports").stat().st_mode & 0o777 == 0o700


# -- suggested pairs and the operator's decisions on them -----------------------------------

# 鵜飼野澪音 three times: the EC account (kanji, email, mobile), the register's card (kana
# only, the same email, born 昭和60年6月1日) and the app (kanji, the same mobile, 60年 read
# as 平成60). The app record agrees with the EC one, but the register's birth date, one
# person with the EC record, blocks it: the register record is named by the suggestion
# only as the record that blocked it.
IDENTITY = IdentitySettings()
BORN = dt.date(1985, 6, 1)
T1 = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)


def plant_pair(store: Store) -> None:
    name = {"family_name": "鵜飼野", "given_name": "澪音"}
    store.write_batch(
        "ec",
        Stream.CUSTOMERS,
        [
            Customer(id="u1", email=EMAIL, phone="090-7731-2468", updated_at=T1, **name),
            Customer(id="x1", email="kenta@example.jp", updated_at=T1, family_name="田中"),
        ],
    )
    store.write_batch(
        "pos",
        Stream.CUSTOMERS,
        [
            Customer(
                id="R9",
                email=EMAIL.upper(),
                family_name_kana="ウカイノ",
                given_name_kana="ミオネ",
                birth_date=BORN,
                updated_at=T1,
            )
        ],
    )
    store.write_batch(
        "app",
        Stream.CUSTOMERS,
        [Customer(id="A3", phone=PHONE, birth_date=dt.date(2048, 6, 1), updated_at=T1, **name)],
    )
    with store.engine.begin() as conn:
        resolve_all(conn, IDENTITY, T1, shop=DEFAULT_SHOP)


def exported_pairs(store: Store, connection: str, record: str) -> list[list[str]]:
    found = store.export_customer(connection, record)["identity_suggestions"]
    json.dumps(found)  # JSON-ready
    return [
        [f"{s['a_connection']}:{s['a_record']}", f"{s['b_connection']}:{s['b_record']}"]
        for s in found
    ]


def test_a_data_request_exports_the_suggestions_naming_the_person(store: Store) -> None:
    plant_pair(store)
    # One of the pair, either side, or the record that blocked it: all are named.
    for connection, record in (("app", "A3"), ("ec", "u1"), ("pos", "R9")):
        assert exported_pairs(store, connection, record) == [["app:A3", "ec:u1"]]
    assert exported_pairs(store, "ec", "x1") == []  # someone else
    (held,) = store.export_customer("pos", "R9")["identity_suggestions"]
    assert held["evidence"]["blocked_by"][0]["records"] == [["app", "A3"], ["pos", "R9"]]
    assert "pos:R9 born 1985-06-01" in held["evidence"]["detail"]
    assert held["conflict"] == "birth_date" and "id" not in held
    # The operator's decision on it replaces it, and names all three.
    with store.engine.begin() as conn:
        (chosen,) = suggestions(conn, shop=DEFAULT_SHOP)
        decide(conn, chosen.id, "link", "同一人物", shop=DEFAULT_SHOP, settings=IDENTITY)
    assert exported_pairs(store, "pos", "R9") == []
    decided = store.export_customer("pos", "R9")["identity_overrides"]
    assert [(o["kind"], o["a_record"], o["b_record"], o["note"]) for o in decided] == [
        ("link", "A3", "R9", "同一人物")
    ]
    assert len(store.export_customer("app", "A3")["identity_overrides"]) == 2


def test_a_data_request_exports_the_merges_joining_the_persons_records(store: Store) -> None:
    plant_pair(store)
    # The register's card joined the EC account on their shared email: the merge, and
    # the evidence that quotes it, are theirs; the app record and someone else have none.
    for connection, record in (("pos", "R9"), ("ec", "u1")):
        (merge,) = store.export_customer(connection, record)["identity_merges"]
        json.dumps(merge)  # JSON-ready
        pair = {
            (merge["a_connection"], merge["a_record"]),
            (merge["b_connection"], merge["b_record"]),
        }
        assert pair == {("ec", "u1"), ("pos", "R9")}
        assert EMAIL in json.dumps(merge["evidence"], ensure_ascii=False).lower()
        assert "id" not in merge and "profile_id" not in merge
    assert store.export_customer("app", "A3")["identity_merges"] == []
    assert store.export_customer("ec", "x1")["identity_merges"] == []


def test_a_redaction_takes_the_suggestions_naming_the_blocking_record(store: Store) -> None:
    plant_pair(store)
    store.redact_customer("pos", "R9")
    with store.engine.connect() as conn:
        left = conn.execute(select(identity_suggestions)).all()
    assert left == []  # named R9 only in its evidence: gone at once, before any refresh
    assert exported_pairs(store, "app", "A3") == []
    # Without the register's birth date nothing blocks the pair: the refresh joins it.
    with store.engine.begin() as conn:
        resolve_pending(conn, IDENTITY, T1, shop=DEFAULT_SHOP)
        assert suggestions(conn, shop=DEFAULT_SHOP) == []
        assert profile_of(conn, "app", "A3", shop=DEFAULT_SHOP) == profile_of(
            conn, "ec", "u1", shop=DEFAULT_SHOP
        )


def test_a_redaction_takes_the_decisions_naming_the_person(store: Store) -> None:
    plant_pair(store)
    with store.engine.begin() as conn:
        (chosen,) = suggestions(conn, shop=DEFAULT_SHOP)
        decide(conn, chosen.id, "split", f"{EMAIL} は別人", shop=DEFAULT_SHOP, settings=IDENTITY)
    store.redact_customer("pos", "R9")
    with store.engine.connect() as conn:
        kept = conn.execute(select(identity_overrides)).all()
    # The separations naming the register record and its note go; the link stays.
    assert [(o.kind, o.a_record, o.b_record) for o in kept] == [("link", "A3", "u1")]
    assert store.export_customer("pos", "R9")["identity_overrides"] == []
