"""Planning a campaign for a large shop: segment, consent, caps, variants, outbox rows.

A shop of ``--profiles`` profiles (one source customer each; 70 % with an order, 80 %
opted in to email, 1 % unsubscribed through omnicrm, 0.5 % of addresses bounced, 2 %
(``--sent``) sent to yesterday under a cap of 1 a week) is loaded straight into the
tables, then one campaign with two variants and a 10 % hold-out is planned, timed: the segment
query, the consent statements and suppression list, the caps, the hash assignment and
every outbox row written. Goal (issue 15): under 20 s for 1,000,000 profiles.

    python benchmarks/campaign_plan.py --profiles 1000000 --backend both
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

import omnicrm
from omnicrm import DeliveryStatus, Dispatcher, DispatchOutcome, Medium, Message
from omnicrm.core.host import Host
from omnicrm.core.store import Store
from omnicrm.core.store.schema import consent_records, suppressions
from omnicrm.crm.bulk import insert_rows
from omnicrm.crm.schema import profile_members, profiles
from omnicrm.engage import campaigns
from omnicrm.engage.schema import outbox
from omnicrm.engage.settings import MessagingSettings

SHOP = "bench"
NOW = dt.datetime(2026, 12, 1, 3, 0, tzinfo=dt.UTC)
CHUNK = 20_000


class _Settings(BaseModel):
    pass


class _Plugin:
    """A dispatcher that is never called: planning only needs one configured."""

    @omnicrm.hookimpl
    def omnicrm_register(self, register: omnicrm.Registrar) -> None:
        register.dispatcher(Dispatcher("bench", Medium.EMAIL, _Settings))

    @omnicrm.hookimpl
    def omnicrm_dispatch_message(self, message: Message, settings: BaseModel) -> DispatchOutcome:
        return DispatchOutcome(DeliveryStatus.SENT)


SETTINGS = MessagingSettings.model_validate(
    {
        "dispatchers": {"email": {"dispatcher": "bench"}},
        "caps": [{"medium": "email", "count": 1, "per": "7d"}],
    }
)


def load(store: Store, n: int, seed: int, sent: float = 0.02) -> None:
    rng = random.Random(seed)
    with store.engine.begin() as conn:
        for start in range(1, n + 1, CHUNK):
            ids = range(start, min(start + CHUNK, n + 1))
            rows: list[dict[str, Any]] = []
            members: list[dict[str, Any]] = []
            for i in ids:
                rows.append(
                    {
                        "id": i,
                        "shop": SHOP,
                        "email": f"p{i}@example.jp",
                        "consent_email": "opted_in" if rng.random() < 0.8 else "unknown",
                        "number_of_orders": 1 if rng.random() < 0.7 else 0,
                        "updated_at": NOW,
                    }
                )
                members.append(
                    {
                        "connection": "web",
                        "record_id": f"C{i}",
                        "shop": SHOP,
                        "profile_id": i,
                        "joined_at": NOW,
                    }
                )
            insert_rows(conn, profiles, rows)
            insert_rows(conn, profile_members, members)
        picks = rng.sample(range(1, n + 1), n // 100)
        insert_rows(
            conn,
            consent_records,
            [
                {
                    "shop": SHOP,
                    "connection": "web",
                    "record_id": f"C{i}",
                    "medium": "email",
                    "state": "opted_out",
                    "stated_at": NOW,
                    "source": "https://shop.example/unsubscribe",
                    "method": "one_click",
                    "evidence": None,
                    "recorded_at": NOW,
                }
                for i in picks
            ],
        )
        insert_rows(
            conn,
            suppressions,
            [
                {
                    "shop": SHOP,
                    "medium": "email",
                    "address": f"p{i}@example.jp",
                    "reason": "bounced",
                    "since": NOW,
                    "detail": None,
                }
                for i in rng.sample(range(1, n + 1), n // 200)
            ],
        )
        earlier = NOW - dt.timedelta(days=1)
        insert_rows(
            conn,
            outbox,
            [
                {
                    "shop": SHOP,
                    "campaign_id": 0,
                    "profile_id": i,
                    "medium": "email",
                    "variant": "A",
                    "status": "sent",
                    "message_id": f"{SHOP}.c0.p{i}.email",
                    "planned_at": earlier,
                    "handed_at": earlier,
                }
                for i in rng.sample(range(1, n + 1), round(n * sent))
            ],
        )
    with store.engine.begin() as conn:
        conn.execute(text("ANALYZE"))


def run(url: str, n: int, seed: int, sent: float) -> tuple[float, campaigns.Plan]:
    store = Store.open(url)
    try:
        start = time.perf_counter()
        load(store, n, seed, sent)
        print(f"  loaded {n:,} profiles in {time.perf_counter() - start:.1f} s", flush=True)
        host = Host.load(extra={"bench": _Plugin()}, use_entry_points=False)
        variants = [
            campaigns.Variant(name="A", subject="{{ name }}へ", body="{{ points }}"),
            campaigns.Variant(name="B", subject="冬の{{ shop_name }}", body="{{ name }}"),
        ]
        with store.engine.begin() as conn:
            cid = campaigns.create(
                conn,
                host,
                SETTINGS,
                shop=SHOP,
                name="bench",
                segment="number_of_orders >= 1",
                medium=Medium.EMAIL,
                variants=variants,
                holdout=0.1,
                now=NOW,
            )
            campaign = campaigns.get(conn, cid, shop=SHOP)
        start = time.perf_counter()
        with store.engine.begin() as conn:
            plan = campaigns.plan(conn, campaign, SETTINGS, now=NOW, tz=ZoneInfo("Asia/Tokyo"))
        return time.perf_counter() - start, plan
    finally:
        store.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--profiles", type=int, default=100_000)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--pg", default="postgresql+psycopg://127.0.0.1:5432/test")
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument(
        "--sent",
        type=float,
        default=0.02,
        help="share of the profiles sent a message yesterday (under the cap): 0.02",
    )
    args = parser.parse_args(argv)
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    for backend in backends:
        print(f"{backend}: planning a campaign for {args.profiles:,} profiles", flush=True)
        if backend == "sqlite":
            with tempfile.TemporaryDirectory() as folder:
                seconds, plan = run(
                    f"sqlite:///{Path(folder) / 'b.db'}", args.profiles, args.seed, args.sent
                )
        else:
            admin = create_engine(make_url(args.pg), isolation_level="AUTOCOMMIT")
            name = f"omnicrm_bench_{uuid.uuid4().hex[:8]}"
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
            try:
                url = make_url(args.pg).set(database=name).render_as_string(hide_password=False)
                seconds, plan = run(url, args.profiles, args.seed, args.sent)
            finally:
                with admin.connect() as conn:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                admin.dispose()
        rate = plan.total / seconds if seconds else 0
        scaled = seconds * 1_000_000 / max(plan.total, 1)
        print(
            f"  planned {plan.total:,} rows ({plan.planned:,} to send; suppressed "
            f"{plan.suppressed}) in {seconds:.2f} s: {rate:,.0f} rows/s; "
            f"~{scaled:.1f} s per 1,000,000 segment rows (goal for 1,000,000 profiles: < 20 s)",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
