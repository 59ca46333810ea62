"""Identity resolution over 1,000,000 source records: records/s.

Generates the records with the test corpus (tests/support/identity_corpus.py: store and
EC records of the same people written the way real data differs, households sharing
phones and emails), scaled up; generation and writing the records into the store are not
timed. Then, each timed on its own:

1. normalisation: ``SourceIdentity.build`` for every record (keys, names);
2. the in-memory resolver (``resolver.resolve``) on those identities, with the corpus's
   pairwise precision and recall;
3. ``identity.resolve_all`` into a fresh SQLite store holding the records: reading them,
   normalising, resolving and writing identity_keys, profiles, profile_members and
   identity_merges, in one transaction;
4. ``identity.resolve_pending`` after 1,000 of the records changed (an incremental run).

    .venv/bin/python benchmarks/identity.py                    # 1,000,000 records
    .venv/bin/python benchmarks/identity.py --records 100000   # a quick check
    .venv/bin/python benchmarks/identity.py --memory-only      # skip the store
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from omnicrm.core.channels import DEFAULT_SHOP, Stream
from omnicrm.core.records import Customer
from omnicrm.core.store import Store
from omnicrm.crm.identity import IdentitySettings, resolve_all, resolve_pending
from omnicrm.crm.identity.resolver import SourceIdentity, resolve
from tests.support.identity_corpus import Corpus, generate, score

RECORDS_PER_HOUSEHOLD = 2.7  # the corpus averages 2.78: generate a little over, then trim


def _corpus(records: int, seed: int) -> Corpus:
    corpus = generate(int(records / RECORDS_PER_HOUSEHOLD) + 100, seed=seed)
    excess = corpus.records - records
    if excess < 0:
        raise SystemExit(
            f"the corpus came out {-excess} records short; lower RECORDS_PER_HOUSEHOLD"
        )
    # Trim to exactly ``records``, from the end of the larger connection.
    connection = max(corpus.customers, key=lambda c: len(corpus.customers[c]))
    kept = corpus.customers[connection][: len(corpus.customers[connection]) - excess]
    for customer in corpus.customers[connection][len(kept) :]:
        del corpus.truth[(connection, customer.id)]
    corpus.customers[connection] = kept
    return corpus


def _identities(corpus: Corpus, settings: IdentitySettings) -> list[SourceIdentity]:
    junk = settings.junk()
    return [
        SourceIdentity.build(
            connection,
            c.id,
            settings=settings,
            junk=junk,
            email=c.email,
            phone=c.phone,
            member_code=c.member_code,
            family_name=c.family_name,
            given_name=c.given_name,
            family_name_kana=c.family_name_kana,
            given_name_kana=c.given_name_kana,
            birth_date=c.birth_date,
            gender=c.gender.value,
        )
        for connection, customers in corpus.customers.items()
        for c in customers
    ]


def _rate(n: int, seconds: float) -> str:
    return f"{n:,} records in {seconds:.2f} s: {n / seconds:,.0f} records/s"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--memory-only", action="store_true", help="skip the SQLite runs")
    parser.add_argument("--changed", type=int, default=1000, help="records changed for 4.")
    args = parser.parse_args()
    settings = IdentitySettings()

    started = time.perf_counter()
    corpus = _corpus(args.records, args.seed)
    print(
        f"generated {corpus.records:,} records of {corpus.people:,} people in "
        f"{corpus.households:,} households ({time.perf_counter() - started:.1f} s, not timed)"
    )

    started = time.perf_counter()
    identities = _identities(corpus, settings)
    print(f"1. normalisation:     {_rate(len(identities), time.perf_counter() - started)}")

    started = time.perf_counter()
    resolution = resolve(identities, settings)
    seconds = time.perf_counter() - started
    print(f"2. resolver (memory): {_rate(len(identities), seconds)}")
    print(f"   {len(resolution.clusters):,} profiles, {len(resolution.edges):,} merges")
    print(f"   {score(corpus.truth, resolution.clusters)}")
    del identities, resolution
    if args.memory_only:
        return 0

    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(f"sqlite:///{Path(tmp) / 'identity.db'}")
        started = time.perf_counter()
        for connection, customers in corpus.customers.items():
            for start in range(0, len(customers), 5000):
                store.write_batch(connection, Stream.CUSTOMERS, customers[start : start + 5000])
        print(f"   (records written to SQLite in {time.perf_counter() - started:.1f} s, not timed)")

        started = time.perf_counter()
        with store.engine.begin() as conn:
            result = resolve_all(conn, settings, shop=DEFAULT_SHOP)
        seconds = time.perf_counter() - started
        print(f"3. resolve_all (SQLite): {_rate(result.records, seconds)}")
        print(f"   {len(result.touched):,} profiles")

        changed = _changes(corpus, args.changed)
        store.write_batch("ec", Stream.CUSTOMERS, changed)
        started = time.perf_counter()
        with store.engine.begin() as conn:
            result = resolve_pending(conn, settings, shop=DEFAULT_SHOP)
        seconds = time.perf_counter() - started
        print(
            f"4. resolve_pending after {len(changed):,} changed records (SQLite): "
            f"{seconds * 1000:.0f} ms; {result.records:,} records re-resolved, "
            f"{len(result.touched):,} profiles touched"
        )
        store.close()
    return 0


def _changes(corpus: Corpus, n: int) -> list[Customer]:
    """``n`` EC records edited: a phone added in another format, a day later."""
    edited = []
    for customer in corpus.customers["ec"][:n]:
        later = customer.updated_at + dt.timedelta(days=1)
        edited.append(customer.model_copy(update={"updated_at": later, "company": "edited"}))
    return edited


if __name__ == "__main__":
    sys.exit(main())
