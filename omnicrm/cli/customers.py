"""``omnicrm customers``: why a profile is one person, and the operator's corrections.

::

    omnicrm customers explain 42                        # members, merges and overrides
    omnicrm customers merges                            # the latest merges, with reasons
    omnicrm customers unmerge store P1001 --note "..."  # take a record out, for good
    omnicrm customers link store:P1001 ec:5512          # these two are one person
    omnicrm customers suggestions                       # pairs refused for one reason
    omnicrm customers suggestions link 3                # suggestion 3: one person
    omnicrm customers suggestions separate 4            # suggestion 4: two people

Each works within one shop (``--shop``, which may be left out when only one is
configured): a profile or record of another shop is refused, never joined.

Exit codes: 0 done; 1 the store failed; 2 an unknown profile, record or suggestion, a
record of another shop, an unknown or missing shop, or bad usage.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import click
from rich.markup import escape

from omnicrm.cli._common import Context, console, errors, fail, shop_option
from omnicrm.render import Col, FitTable, local_time, shop_zone, zone_name

if TYPE_CHECKING:  # the store and the CRM load when a command runs, not for --help
    from sqlalchemy import Connection

    from omnicrm.app.runtime import Runtime
    from omnicrm.crm.identity import (
        Explanation,
        Merge,
        PairSuggestion,
        RecordRef,
        ResolveResult,
    )
    from omnicrm.crm.refresh import CrmSettings


@click.group("customers")
def customers() -> None:
    """Unified customers: find and show them; explain, list, undo and make merges."""


@contextlib.contextmanager
def _runtime(obj: Context) -> Iterator[Runtime]:
    """The configured runtime; unknown ids exit 2 with their message."""
    from omnicrm.crm.identity import (
        NothingToSplitError,
        NothingToUnmergeError,
        OtherShopError,
        UnknownProfileError,
        UnknownRecordError,
        UnknownSuggestionError,
    )

    with errors():
        runtime = obj.runtime(need_config=False)
        try:
            yield runtime
        except (
            UnknownProfileError,
            UnknownRecordError,
            NothingToUnmergeError,
            NothingToSplitError,
            OtherShopError,
            UnknownSuggestionError,
        ) as exc:
            fail(str(exc), 2)
        finally:
            runtime.close()


def _record(value: str) -> RecordRef:
    """``CONNECTION:ID``; the id may hold colons itself (gid://shopify/Customer/1)."""
    connection, sep, record_id = value.partition(":")
    if not sep or not connection or not record_id:
        fail(f"{value!r} is not CONNECTION:ID (e.g. store:P1001)", 2)
    return connection, record_id


def _show(ref: RecordRef) -> str:
    return escape(f"{ref[0]}:{ref[1]}")


def _when(moment: dt.datetime, tz: dt.tzinfo) -> str:
    """Under a heading naming the zone (see _at)."""
    return local_time(moment, tz, "%Y-%m-%d %H:%M")


def _at(header: str, tz: dt.tzinfo) -> str:
    return f"{header} ({zone_name(tz)})"


def _reason(evidence: dict[str, Any]) -> str:
    from omnicrm.crm.identity import describe

    return escape(describe(evidence))


def _refresh(runtime: Runtime, shop: str, result: ResolveResult) -> None:
    """Rebuild the profiles the action changed, rescore them and recount the shop's
    segments."""
    refreshed = runtime.refresh(shop)
    console.print(
        f"{len(result.touched)} profile(s) re-resolved ({_ids(result.touched)}), "
        f"{len(result.removed)} removed ({_ids(result.removed)}); "
        f"refreshed in {refreshed.seconds:.2f}s"
    )


def _ids(ids: frozenset[int]) -> str:
    return ", ".join(str(i) for i in sorted(ids)) or "-"


@customers.command("explain")
@click.argument("profile_id", type=int)
@shop_option
@click.pass_obj
def explain_command(obj: Context, profile_id: int, shop: str | None) -> None:
    """Why PROFILE_ID is one person: its records, each merge and its reason, overrides."""
    from omnicrm.crm.identity import explain

    with _runtime(obj) as runtime:
        chosen = runtime.shop(shop)
        with runtime.store.engine.connect() as conn:
            why = explain(conn, profile_id, shop=chosen.id)
    _print_explanation(why, shop_zone(runtime.config, chosen.id))


def _print_explanation(why: Explanation, tz: dt.tzinfo) -> None:
    console.print(f"[bold]profile {why.profile_id}[/]: {len(why.members)} source record(s)")
    members = FitTable(
        [
            Col("connection"),
            Col("record"),
            Col("name"),
            Col("email", 1),
            Col("phone", 2, keep=True),
            Col("born", 2, keep=True),
            Col(_at("joined", tz), 3, keep=True),
        ]
    )
    for m in why.members:
        members.add_row(
            escape(m.connection),
            escape(m.record_id),
            escape(m.name or "-"),
            escape(m.email or "-"),
            escape(m.phone or "-"),
            "-" if m.birth_date is None else m.birth_date.isoformat(),
            _when(m.joined_at, tz),
        )
    console.print(members)
    if why.merges:
        console.print(_merge_table(why.merges, tz, with_profile=False))
    else:
        console.print("no merges: a single source record")
    if why.overrides:
        overrides = FitTable(
            [
                Col("#", keep=True),
                Col("operator", keep=True),
                Col("records"),
                Col("note", 1),
                Col(_at("at", tz), 2, keep=True),
            ],
            title="overrides",
        )
        for o in why.overrides:
            overrides.add_row(
                str(o.id),
                o.kind,
                f"{_show(o.a)} {'+' if o.kind == 'link' else '/'} {_show(o.b)}",
                escape(o.note or "-"),
                _when(o.created_at, tz),
            )
        console.print(overrides)


def _merge_table(merges: list[Merge], tz: dt.tzinfo, *, with_profile: bool) -> FitTable:
    columns = [Col("profile", keep=True)] if with_profile else []
    table = FitTable(
        [
            *columns,
            Col("records"),
            Col("rule", 2),
            Col("reason", 1),
            Col(_at("merged", tz), 3, keep=True),
        ],
        title="merges",
    )
    for merge in merges:
        row = [str(merge.profile_id)] if with_profile else []
        table.add_row(
            *row,
            f"{_show(merge.a)} + {_show(merge.b)}",
            escape(merge.rule),
            _reason(merge.evidence),
            _when(merge.merged_at, tz),
        )
    return table


@customers.command("merges")
@click.option("--limit", default=30, show_default=True, help="At most this many merges.")
@shop_option
@click.pass_obj
def merges_command(obj: Context, limit: int, shop: str | None) -> None:
    """The latest merges across the shop's profiles, with their reasons."""
    from omnicrm.crm.identity import recent_merges

    with _runtime(obj) as runtime:
        chosen = runtime.shop(shop)
        with runtime.store.engine.connect() as conn:
            found = recent_merges(conn, limit, shop=chosen.id)
    if not found:
        console.print("no merges yet")
        return
    console.print(_merge_table(found, shop_zone(runtime.config, chosen.id), with_profile=True))


@customers.command("unmerge")
@click.argument("connection")
@click.argument("record_id")
@click.option("--note", help="Why: kept with the override.")
@shop_option
@click.pass_obj
def unmerge_command(
    obj: Context, connection: str, record_id: str, note: str | None, shop: str | None
) -> None:
    """Take RECORD_ID of CONNECTION out of its profile; no later run merges it back."""
    with _runtime(obj) as runtime:
        settings = runtime.crm_settings(shop)
        with runtime.store.engine.begin() as conn:
            result = _unmerge(conn, settings, connection, record_id, note)
        console.print(f"{escape(connection)}:{escape(record_id)} unmerged")
        _refresh(runtime, settings.shop, result)


def _unmerge(
    conn: Connection, settings: CrmSettings, connection: str, record_id: str, note: str | None
) -> ResolveResult:
    from omnicrm.crm.identity import unmerge

    return unmerge(
        conn, connection, record_id, note, shop=settings.shop, settings=settings.identity
    )


@customers.command("link")
@click.argument("first", metavar="CONNECTION:ID")
@click.argument("second", metavar="CONNECTION:ID")
@click.option("--note", help="Why: kept with the override.")
@shop_option
@click.pass_obj
def link_command(obj: Context, first: str, second: str, note: str | None, shop: str | None) -> None:
    """Make two source records of the shop one person, whatever the rules say."""
    from omnicrm.crm.identity import link

    a, b = _record(first), _record(second)
    with _runtime(obj) as runtime:
        settings = runtime.crm_settings(shop)
        with runtime.store.engine.begin() as conn:
            result = link(conn, a, b, note, shop=settings.shop, settings=settings.identity)
        console.print(f"{_show(a)} and {_show(b)} linked")
        _refresh(runtime, settings.shop, result)


@customers.group("suggestions", invoke_without_command=True)
@click.option("--limit", default=50, show_default=True, help="At most this many pairs.")
@click.option("--json", "as_json", is_flag=True, help="The pairs and their evidence as JSON.")
@shop_option
@click.pass_context
def suggestions_command(ctx: click.Context, limit: int, as_json: bool, shop: str | None) -> None:
    """Likely pairs the rules refused for one reason, strongest first, with the evidence:
    what agreed, what conflicted and why. Decide one with `link N` or `separate N`; a pair
    blocked by a third record of one profile also with `split N`."""
    if ctx.invoked_subcommand is not None:
        return
    import json

    from omnicrm.crm.identity import suggestions

    obj: Context = ctx.obj
    with _runtime(obj) as runtime:
        chosen = runtime.shop(shop)
        with runtime.store.engine.connect() as conn:
            found = suggestions(conn, shop=chosen.id, limit=limit)
    if as_json:
        click.echo(json.dumps([s.as_json() for s in found], ensure_ascii=False, indent=2))
        return
    if not found:
        console.print("no suggestions: every pair the rules refused was refused for good reasons")
        return
    console.print(_suggestion_table(found))
    console.print(
        "decide one: `omnicrm customers suggestions link N` (one person) or "
        "`... separate N` (two people); blocked by a third record: `... split N` (the pair"
        " is one person, the third record someone else)"
    )


def _suggestion_table(found: list[PairSuggestion]) -> FitTable:
    table = FitTable(
        [
            Col("#", keep=True),
            Col("strength", keep=True),
            Col("records"),
            Col("names"),
            Col("refused for", 1),
            Col("evidence weighed", 2),
        ],
        title="suggestions (strongest first)",
    )
    for s in found:
        table.add_row(
            str(s.id),
            str(s.strength),
            f"{_show(s.a.ref)}\n{_show(s.b.ref)}",
            escape(f"{_side(s.a.name, s.a.birth_date)}\n{_side(s.b.name, s.b.birth_date)}"),
            escape(_refusal(s)),
            _reason(s.evidence),
        )
    return table


def _refusal(found: PairSuggestion) -> str:
    """Why the pair was refused, and which other records a link joins with it."""
    detail = str(found.evidence.get("detail", found.conflict))
    third = sorted({ref for pair in found.blocked_by for ref in pair} - {found.a.ref, found.b.ref})
    if third:
        detail += f"\na link joins {', '.join(_show(ref) for ref in third)} too"
    return detail


def _side(name: str | None, born: dt.date | None) -> str:
    return f"{name or '(no name)'}{'' if born is None else f', born {born.isoformat()}'}"


def _decide(
    ctx: click.Context, suggestion_id: int, decision: str, note: str | None, shop: str | None
) -> None:
    from omnicrm.crm.identity import decide

    obj: Context = ctx.obj
    if shop is None and ctx.parent is not None:  # given before the subcommand
        shop = ctx.parent.params.get("shop")
    with _runtime(obj) as runtime:
        settings = runtime.crm_settings(shop)
        with runtime.store.engine.begin() as conn:
            chosen, result = decide(
                conn, suggestion_id, decision, note, shop=settings.shop, settings=settings.identity
            )
        pair = f"{_show(chosen.a.ref)} and {_show(chosen.b.ref)}"
        if decision == "link":
            third = {ref for both in chosen.blocked_by for ref in both} - {
                chosen.a.ref,
                chosen.b.ref,
            }
            joined = f" with {', '.join(_show(ref) for ref in sorted(third))}" if third else ""
            console.print(f"{pair} linked{joined}: one person")
        elif decision == "separate":
            console.print(f"{pair} separated: two people, for good")
        else:
            out = ", ".join(_show(ref) for ref in chosen.third_records())
            console.print(f"{pair} linked: one person; {out} taken out: someone else, for good")
        _refresh(runtime, settings.shop, result)


def _decision(name: str, summary: str) -> None:
    """``suggestions NAME N``: decide suggestion N so (see `decide`)."""

    @suggestions_command.command(name, help=summary)
    @click.argument("suggestion_id", metavar="N", type=int)
    @click.option("--note", help="Why: kept with the overrides.")
    @shop_option
    @click.pass_context
    def command(ctx: click.Context, suggestion_id: int, note: str | None, shop: str | None) -> None:
        _decide(ctx, suggestion_id, name, note, shop)


_decision(
    "link",
    "Suggestion N is one person: link its two records, and the records of their profiles"
    " that blocked them (remembered for good).",
)
_decision("separate", "Suggestion N is two people: keep its records apart (remembered for good).")
_decision(
    "split",
    "Suggestion N's pair is one person and the third record that blocked it someone else:"
    " link the pair, take that record out of it (remembered for good).",
)
