"""A redaction reaches the files kept outside the store: the postal DM runs that held the
person's name and address are rebuilt without them (or deleted when nobody is left in
them), the journals forget them, and a data request lists those runs first."""

from __future__ import annotations

import json
from pathlib import Path

import pypdf
import pytest

from omnicrm.app.config import Config, CrmSection, SchedulerSection
from omnicrm.app.runtime import Runtime
from omnicrm.core.channels import Stream
from omnicrm.core.host import Host
from omnicrm.core.records import Address, Consent, ConsentState, Medium
from omnicrm.core.store import Store
from omnicrm.crm.refresh import CrmSettings, refresh
from omnicrm.engage import campaigns
from omnicrm.engage.campaigns import Variant
from omnicrm.engage.sender import Sender
from omnicrm.engage.settings import MessagingSettings
from omnicrm.plugins.postal import plugin as postal_plugin
from tests.engage.conftest import NOW, SHOP, T0, TOKYO, build, person

POSTAL = [Consent(medium=Medium.POSTAL, state=ConsentState.OPTED_IN, updated_at=T0)]
# What names and places the person: none of it may stay in any file.
SECRETS = ("佐藤", "美咲", "芝公園4-2-8", "東京タワー99", "105-0011", "1050011")


def home(code: str, line1: str = "神宮前1-2-3", line2: str = "青山101") -> Address:
    return Address(postal_code=code, prefecture="東京都", city="港区", line1=line1, line2=line2)


def send(store: Store, host: Host, settings: MessagingSettings, name: str) -> None:
    with store.engine.begin() as conn:
        cid = campaigns.create(
            conn,
            host,
            settings,
            shop=SHOP,
            name=name,
            segment="number_of_orders >= 1",
            medium=Medium.POSTAL,
            variants=[Variant(name="A", body="{{ name }}へ 冬のご案内")],
            now=NOW,
        )
        campaigns.plan(conn, campaigns.get(conn, cid, shop=SHOP), settings, now=NOW, tz=TOKYO)
    sender = Sender(
        store, host, shop=SHOP, shop_name="見本店", settings=settings, tz=TOKYO, clock=lambda: NOW
    )
    assert sender.send(name).finished


def text_of(path: Path) -> str:
    """What a reader sees in a file: a PDF's extracted text, any other file decoded."""
    if path.suffix == ".pdf":
        return "\n".join(page.extract_text() or "" for page in pypdf.PdfReader(path).pages)
    data = path.read_bytes()
    return data.decode("utf-8-sig", "replace") + data.decode("cp932", "replace")


def mentions(directory: Path) -> dict[str, list[str]]:
    """Each file under ``directory`` that mentions the person, with what it says."""
    found: dict[str, list[str]] = {}
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        text, raw = text_of(path), path.read_bytes()
        hits = [s for s in SECRETS if s in text or s.encode() in raw]
        if hits:
            found[str(path.relative_to(directory))] = hits
    return found


@pytest.fixture
def directory(tmp_path: Path) -> Path:
    return tmp_path / "dm"


@pytest.fixture
def runtime(
    store_url: str, directory: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Runtime:
    monkeypatch.setenv("OMNICRM_DATA_DIR", str(tmp_path / "data"))
    settings = MessagingSettings.model_validate(
        {
            "dispatchers": {
                "postal": {"dispatcher": "postal", "settings": {"directory": str(directory)}}
            }
        }
    )
    host = Host.load(extra={"postal": postal_plugin}, use_entry_points=False)
    config = Config(
        None,
        store_url,
        SchedulerSection(),
        crm=CrmSection(refresh_after_sync=False),
        messaging=settings,
    )
    return Runtime(host, config)


def test_a_redaction_rebuilds_the_postal_files_without_the_person(
    runtime: Runtime, store: Store, directory: Path
) -> None:
    host, settings = runtime.host, runtime.config.shop(None).messaging
    satou = person(
        1,
        family_name="佐藤",
        given_name="美咲",
        email="misaki@example.jp",
        consents=POSTAL,
        address=home("105-0011", "芝公園4-2-8", "東京タワー99"),
    )
    others = [person(i, consents=POSTAL, address=home(f"150-000{i}")) for i in (2, 3)]
    build(store, [satou, *others])
    send(store, host, settings, "winter-dm")
    # Then her postal code is cut short: the next run lists her as unaddressable, with
    # what her record said.
    moved = satou.model_copy(
        update={"address": home("105-00", "芝公園4-2-8", "東京タワー99"), "updated_at": NOW}
    )
    store.write_batch("web", Stream.CUSTOMERS, [moved])
    refresh(store, CrmSettings(), now=NOW)
    send(store, host, settings, "spring-dm")
    before = mentions(directory)
    files = sorted(before)
    # The recipients CSV, the labels PDF (its text as a reader extracts it) and the
    # journal of the first run; the unaddressable list and the journal of the second.
    assert [f for f in files if f.endswith("-labels.pdf")] == [
        f for f in files if "winter-dm" in f and f.endswith(".pdf")
    ]
    assert len([f for f in files if f.endswith(".jsonl")]) == 2
    assert any(f.endswith("-unaddressable.csv") for f in files)
    assert {"佐藤", "美咲"} <= set(before[next(f for f in files if f.endswith(".pdf"))])

    # A data request lists the runs that hold her.
    exported = json.loads(runtime.write_export("web", "C1").read_text(encoding="utf-8"))
    runs = sorted(entry["run"] for entry in exported["message_files"])
    assert len(runs) == 2 and "winter-dm" in runs[1] and "spring-dm" in runs[0]
    assert all(e["dispatcher"] == "postal" for e in exported["message_files"])

    runtime.redact_customer("web", "C1")
    assert mentions(directory) == {}
    # The others are still there, in every file that had them.
    (recipients,) = [p for p in directory.glob("*winter-dm*.csv") if "unaddress" not in p.name]
    assert recipients.read_text(encoding="utf-8-sig").count("山田 花子") == 2
    (labels,) = directory.glob("*winter-dm*-labels.pdf")
    assert text_of(labels).count("山田") == 2
    assert not list(directory.glob("*spring-dm*-unaddressable.csv"))  # nobody left in it
    assert not list(directory.rglob("*.tmp"))
    # Asked again, nothing holds her.
    exported = json.loads(runtime.write_export("web", "C2").read_text(encoding="utf-8"))
    assert len(exported["message_files"]) == 2  # Hanako 2 is in both runs still
