# ruff: noqa: RUF001 (full-width text is what the tests feed in)
"""Identity resolution against the store, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import Connection, event, func, insert, select

from omnicrm.core.channels import DEFAULT_SHOP, Stream
from omnicrm.core.records import Customer
from omnicrm.core.store import Store
from omnicrm.core.store.changes import queue_changes
from omnicrm.core.store.schema import profile_changes
from omnicrm.crm.identity import (
    IdentitySettings,
    NothingToUnmergeError,
    RecordRef,
    UnknownProfileError,
    UnknownRecordError,
    apply,
    explain,
    link,
    plan,
    recent_merges,
    resolve_all,
    resolve_pending,
    unmerge,
)
from omnicrm.crm.schema import (
    identity_keys,
    identity_merges,
    identity_overrides,
    interactions,
    nps_responses,
    profile_members,
    profile_values,
    profiles,
)

SETTINGS = IdentitySettings()
T0 = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
_clock = [T0]


def customer(record_id: str, **fields: Any) -> Customer:
    _clock[0] += dt.timedelta(minutes=1)
    return Customer(id=record_id, updated_at=_clock[0], **fields)


HANAKO = {
    "family_name": "山田",
    "given_name": "花子",
    "family_name_kana": "ヤマダ",
    "given_name_kana": "ハナコ",
}
TARO = {"family_name": "佐藤", "given_name": "太郎"}


def write(store: Store, connection: str, *records: Customer) -> None:
    store.write_batch(connection, Stream.CUSTOMERS, list(records))


def pending(store: Store, now: dt.datetime = T0) -> Any:
    with store.engine.begin() as conn:
        return resolve_pending(conn, SETTINGS, now, shop=DEFAULT_SHOP)


def everything(store: Store, now: dt.datetime = T0) -> Any:
    with store.engine.begin() as conn:
        return resolve_all(conn, SETTINGS, now, shop=DEFAULT_SHOP)


def members(store: Store) -> dict[RecordRef, int]:
    with store.engine.connect() as conn:
        return {
            (r.connection, r.record_id): r.profile_id for r in conn.execute(select(profile_members))
        }


def count(store: Store, table: Any, *where: Any) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one())


def add_history(conn: Connection, profile_id: int, tag: str) -> None:
    conn.execute(
        insert(interactions).values(
            shop=DEFAULT_SHOP,
            profile_id=profile_id,
            source="csv",
            external_id=tag,
            kind="inquiry",
            occurred_at=T0,
            created_at=T0,
        )
    )
    conn.execute(
        insert(nps_responses).values(
            shop=DEFAULT_SHOP,
            profile_id=profile_id,
            source="survey",
            external_id=tag,
            score=9,
            responded_at=T0,
        )
    )
    conn.execute(
        insert(profile_values).values(
            shop=DEFAULT_SHOP, profile_id=profile_id, attr="tag", value=tag
        )
    )


def test_a_first_run_makes_profiles_and_keys_and_drains_the_queue(store: Store) -> None:
    write(store, "ec", customer("1", email="Hanako@Example.jp", phone="090-1111-2222", **HANAKO))
    write(
        store,
        "store",
        customer("P1", phone="０９０－１１１１－２２２２", member_code="M 1", **HANAKO),
    )
    write(store, "ec", customer("2", email="taro@example.jp", **TARO))
    result = everything(store)
    m = members(store)
    assert m[("ec", "1")] == m[("store", "P1")] != m[("ec", "2")]
    assert result.touched == set(m.values()) and result.removed == frozenset()
    assert result.records == 3 and result.changes == 3
    assert count(store, profile_changes) == 0
    with store.engine.connect() as conn:
        keys = {
            (r.connection, r.record_id, r.kind, r.value)
            for r in conn.execute(select(identity_keys))
        }
        bare = conn.execute(select(profiles).where(profiles.c.id == m[("ec", "2")])).one()
        (edge,) = conn.execute(select(identity_merges)).all()
    assert keys == {
        ("ec", "1", "email", "hanako@example.jp"),
        ("ec", "1", "phone", "+819011112222"),
        ("store", "P1", "phone", "+819011112222"),
        ("store", "P1", "member_code", "1"),
        ("ec", "2", "email", "taro@example.jp"),
    }
    assert (bare.gender, bare.lifecycle_stage, bare.number_of_orders, bare.updated_at) == (
        "unknown",
        "prospect",
        0,
        T0,
    )
    assert (edge.profile_id, edge.rule, edge.merged_at) == (m[("ec", "1")], "phone", T0)
    assert edge.evidence == {
        "keys": {"phone": "+819011112222"},
        "names": "agree",
        "birth_date": "unknown",
        "gender": "unknown",
    }


def test_a_plan_drains_its_shops_changes_only_counting_each_time_queued(store: Store) -> None:
    with store.engine.begin() as conn:
        queue_changes(conn, DEFAULT_SHOP, "pos", ["1", "2"])
        queue_changes(conn, "sake", "web", ["1"])
        queue_changes(conn, DEFAULT_SHOP, "pos", ["2", "3"])
        prepared = plan(conn, SETTINGS, shop=DEFAULT_SHOP)
    assert prepared.changed == {("pos", "1"), ("pos", "2"), ("pos", "3")}
    assert prepared.changes == 4
    # Another shop's changes wait for its own refresh.
    assert count(store, profile_changes) == 1


def test_a_change_committed_while_the_queue_drains_is_taken_or_left_never_lost(
    store: Store,
) -> None:
    if store.dialect != "postgresql":
        pytest.skip("SQLite has one writer: no sync commits while a refresh drains")
    late = store.engine.connect()
    late_sync = late.begin()
    queue_changes(late, DEFAULT_SHOP, "pos", ["late"])  # the lower seq, committed last
    with store.engine.begin() as conn:
        queue_changes(conn, DEFAULT_SHOP, "pos", ["early"])

    def commit_late_sync_before_the_delete(*args: Any) -> None:
        if args[2].startswith("DELETE FROM profile_changes") and late_sync.is_active:
            late_sync.commit()

    event.listen(store.engine, "before_cursor_execute", commit_late_sync_before_the_delete)
    try:
        with store.engine.begin() as conn:
            drained = plan(conn, SETTINGS, shop=DEFAULT_SHOP).changed
    finally:
        event.remove(store.engine, "before_cursor_execute", commit_late_sync_before_the_delete)
        late.close()
    with store.engine.connect() as conn:
        rows = conn.execute(select(profile_changes)).all()
    left = {(r.connection, i) for r in rows for i in r.record_ids}
    assert drained | left == {("pos", "late"), ("pos", "early")}
    assert not drained & left


def test_a_record_joining_keeps_the_profile_id_and_touches_only_what_it_reaches(
    store: Store,
) -> None:
    write(store, "ec", customer("1", email="hanako@example.jp", **HANAKO))
    write(store, "ec", customer("2", email="taro@example.jp", **TARO))
    everything(store)
    before = members(store)
    write(store, "store", customer("P1", email="HANAKO@example.jp", **HANAKO))
    result = pending(store, T0 + dt.timedelta(days=1))
    after = members(store)
    assert after[("store", "P1")] == after[("ec", "1")] == before[("ec", "1")]
    assert after[("ec", "2")] == before[("ec", "2")]
    assert result.touched == {before[("ec", "1")]} and result.removed == frozenset()
    assert result.records == 2  # the new record and the one it shares a key with
    # Nothing pending: nothing to do.
    again = pending(store)
    assert (again.touched, again.records, again.changes) == (frozenset(), 0, 0)


def test_plan_names_the_reached_profiles_before_anything_changes(store: Store) -> None:
    write(
        store,
        "ec",
        customer("1", email="hanako@example.jp", **HANAKO),
        customer("2", email="taro@example.jp", **TARO),
    )
    everything(store)
    m = members(store)
    write(store, "store", customer("P1", email="hanako@example.jp", **HANAKO))
    with store.engine.begin() as conn:
        prepared = plan(conn, SETTINGS, shop=DEFAULT_SHOP)
        assert prepared.changed == {("store", "P1")}
        assert prepared.reach == {m[("ec", "1")]}
        assert conn.execute(select(func.count()).select_from(profile_members)).scalar_one() == 2
        result = apply(conn, prepared, T0)
    assert result.touched == {m[("ec", "1")]}


def test_two_profiles_merge_into_the_lower_id_taking_the_history_along(store: Store) -> None:
    write(store, "ec", customer("1", email="hanako@example.jp", **HANAKO))
    write(store, "store", customer("P1", phone="090-1111-2222", **HANAKO))
    everything(store)
    m = members(store)
    low, high = sorted({m[("ec", "1")], m[("store", "P1")]})
    with store.engine.begin() as conn:
        add_history(conn, low, "a")
        add_history(conn, high, "b")
    write(store, "ec", customer("1", email="hanako@example.jp", phone="09011112222", **HANAKO))
    result = pending(store)
    m = members(store)
    assert m[("ec", "1")] == m[("store", "P1")] == low
    assert result.touched == {low} and result.removed == {high}
    assert count(store, profiles, profiles.c.id == high) == 0
    assert count(store, interactions, interactions.c.profile_id == low) == 2
    assert count(store, nps_responses, nps_responses.c.profile_id == low) == 2
    assert count(store, profile_values, profile_values.c.profile_id == high) == 0
    assert [e.profile_id for e in _merges(store)] == [low]


def _merges(store: Store) -> list[Any]:
    with store.engine.connect() as conn:
        return recent_merges(conn, shop=DEFAULT_SHOP)


def test_a_redacted_record_leaves_its_profile_and_a_lone_one_takes_the_profile_along(
    store: Store,
) -> None:
    write(store, "ec", customer("1", email="hanako@example.jp", **HANAKO))
    write(store, "store", customer("P1", email="hanako@example.jp", **HANAKO))
    write(store, "ec", customer("2", email="taro@example.jp", **TARO))
    everything(store)
    m = members(store)
    with store.engine.begin() as conn:
        add_history(conn, m[("ec", "2")], "t")
    store.redact_customer("store", "P1")
    store.redact_customer("ec", "2")
    result = pending(store)
    after = members(store)
    assert ("store", "P1") not in after and ("ec", "2") not in after
    assert after[("ec", "1")] == m[("ec", "1")]
    assert result.touched == {m[("ec", "1")]} and result.removed == {m[("ec", "2")]}
    assert count(store, profiles) == 1
    assert count(store, interactions) == 0 and count(store, nps_responses) == 0
    assert count(store, identity_keys, identity_keys.c.record_id.in_(["P1", "2"])) == 0
    assert _merges(store) == []  # the edge went with the record


def test_an_erased_connection_leaves_every_profile(store: Store) -> None:
    write(store, "ec", customer("1", email="hanako@example.jp", **HANAKO))
    write(store, "store", customer("P1", email="hanako@example.jp", **HANAKO))
    everything(store)
    store.erase_connection("store")
    pending(store)
    assert set(members(store)) == {("ec", "1")}


def test_an_edit_can_split_a_profile_and_the_larger_part_keeps_the_id(store: Store) -> None:
    shared = "hanako@example.jp"
    write(
        store,
        "ec",
        customer("1", email=shared, **HANAKO),
        customer("2", email=shared, phone="090-1111-2222", **HANAKO),
    )
    write(store, "store", customer("P1", phone="090-1111-2222", **HANAKO))
    everything(store)
    (pid,) = set(members(store).values())
    write(store, "ec", customer("1", email="other@example.jp", **HANAKO))
    result = pending(store)
    m = members(store)
    assert m[("ec", "2")] == m[("store", "P1")] == pid
    assert m[("ec", "1")] != pid
    assert result.touched == {pid, m[("ec", "1")]}


def test_unmerge_takes_a_record_out_for_good(store: Store) -> None:
    write(store, "ec", customer("1", email="hanako@example.jp", phone="090-1111-2222", **HANAKO))
    write(
        store,
        "store",
        customer("P1", phone="090-1111-2222", **HANAKO),
        customer("P2", email="hanako@example.jp", phone="090-1111-2222", **HANAKO),
    )
    everything(store)
    (pid,) = set(members(store).values())
    with store.engine.begin() as conn:
        result = unmerge(
            conn, "ec", "1", "two people after all", shop=DEFAULT_SHOP, settings=SETTINGS, now=T0
        )
    m = members(store)
    assert m[("store", "P1")] == m[("store", "P2")] == pid != m[("ec", "1")]
    assert result.touched == {pid, m[("ec", "1")]}
    # The affected members are queued, so the next refresh rebuilds both profiles.
    with store.engine.connect() as conn:
        queued = {
            (r.connection, i) for r in conn.execute(select(profile_changes)) for i in r.record_ids
        }
        kinds = [r.kind for r in conn.execute(select(identity_overrides))]
    assert queued == {("ec", "1"), ("store", "P1"), ("store", "P2")}
    assert kinds == ["separate", "separate"]
    # Neither a refresh nor a full run redoes the merge.
    pending(store)
    everything(store)
    assert members(store) == m
    with store.engine.connect() as conn:
        why = explain(conn, m[("ec", "1")], shop=DEFAULT_SHOP)
    assert [(o.kind, o.note) for o in why.overrides] == [("separate", "two people after all")] * 2


def test_after_an_unmerge_the_rest_stay_together_only_where_they_still_match(store: Store) -> None:
    write(store, "ec", customer("1", email="hanako@example.jp", phone="090-1111-2222", **HANAKO))
    write(
        store,
        "store",
        customer("P1", phone="090-1111-2222", **HANAKO),
        customer("P2", email="hanako@example.jp", **HANAKO),
    )
    everything(store)
    with store.engine.begin() as conn:
        unmerge(conn, "ec", "1", shop=DEFAULT_SHOP, settings=SETTINGS, now=T0)
    assert len(set(members(store).values())) == 3  # P1 and P2 were joined only through 1


def test_unmerge_errors(store: Store) -> None:
    write(store, "ec", customer("1", email="hanako@example.jp", **HANAKO))
    everything(store)
    with store.engine.begin() as conn, pytest.raises(UnknownRecordError, match="ec:nope"):
        unmerge(conn, "ec", "nope", shop=DEFAULT_SHOP, settings=SETTINGS)
    with store.engine.begin() as conn, pytest.raises(NothingToUnmergeError, match="alone"):
        unmerge(conn, "ec", "1", shop=DEFAULT_SHOP, settings=SETTINGS)


def test_link_joins_two_people_the_rules_keep_apart_and_undoes_an_unmerge(store: Store) -> None:
    write(store, "ec", customer("1", email="hanako@example.jp", **HANAKO))
    write(store, "store", customer("P1", family_name="山田", given_name="華子"))
    everything(store)
    m = members(store)
    assert m[("ec", "1")] != m[("store", "P1")]
    with store.engine.begin() as conn:
        result = link(
            conn,
            ("store", "P1"),
            ("ec", "1"),
            "same card holder",
            shop=DEFAULT_SHOP,
            settings=SETTINGS,
            now=T0,
        )
    m = members(store)
    assert m[("ec", "1")] == m[("store", "P1")]
    assert len(result.removed) == 1
    (edge,) = _merges(store)
    assert (edge.rule, edge.evidence) == ("link", {"operator": "link"})
    # An unmerge, then a link again: the separation is gone and the link holds.
    with store.engine.begin() as conn:
        unmerge(conn, "store", "P1", shop=DEFAULT_SHOP, settings=SETTINGS)
    assert members(store)[("ec", "1")] != members(store)[("store", "P1")]
    with store.engine.begin() as conn:
        link(conn, ("ec", "1"), ("store", "P1"), shop=DEFAULT_SHOP, settings=SETTINGS)
        kinds = [r.kind for r in conn.execute(select(identity_overrides))]
    assert kinds == ["link"]
    everything(store)
    assert len(set(members(store).values())) == 1


def test_link_errors(store: Store) -> None:
    write(store, "ec", customer("1"))
    with store.engine.begin() as conn, pytest.raises(UnknownRecordError, match="store:P9"):
        link(conn, ("ec", "1"), ("store", "P9"), shop=DEFAULT_SHOP, settings=SETTINGS)
    with store.engine.begin() as conn, pytest.raises(UnknownRecordError, match="itself"):
        link(conn, ("ec", "1"), ("ec", "1"), shop=DEFAULT_SHOP, settings=SETTINGS)


def test_explain(store: Store) -> None:
    write(store, "ec", customer("1", email="hanako@example.jp", phone="090-1111-2222", **HANAKO))
    write(
        store,
        "store",
        customer("P1", phone="09011112222", family_name_kana="ﾔﾏﾀﾞ", given_name_kana="ﾊﾅｺ"),
    )
    everything(store)
    (pid,) = set(members(store).values())
    with store.engine.connect() as conn:
        why = explain(conn, pid, shop=DEFAULT_SHOP)
        with pytest.raises(UnknownProfileError, match="no profile 999"):
            explain(conn, 999, shop=DEFAULT_SHOP)
    assert [(m.connection, m.record_id, m.name, m.phone) for m in why.members] == [
        ("ec", "1", "山田 花子 (ヤマダ ハナコ)", "090-1111-2222"),
        ("store", "P1", "ﾔﾏﾀﾞ ﾊﾅｺ", "09011112222"),
    ]
    (merge,) = why.merges
    assert (merge.a, merge.b, merge.rule) == (("ec", "1"), ("store", "P1"), "phone")
    assert merge.evidence == {
        "keys": {"phone": "+819011112222"},
        "names": "agree",
        "birth_date": "unknown",
        "gender": "unknown",
    }
    assert why.overrides == []


def test_a_merge_keeps_its_time_when_its_profile_is_re_resolved(store: Store) -> None:
    write(store, "ec", customer("1", email="hanako@example.jp", **HANAKO))
    write(store, "store", customer("P1", email="hanako@example.jp", **HANAKO))
    everything(store, T0)
    write(store, "ec", customer("1", email="hanako@example.jp", company="ACME", **HANAKO))
    later = T0 + dt.timedelta(days=3)
    result = pending(store, later)
    assert len(result.touched) == 1  # the edited record's profile, for a rebuild
    (edge,) = _merges(store)
    assert edge.merged_at == T0
