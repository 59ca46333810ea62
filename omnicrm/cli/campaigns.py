"""``omnicrm campaigns``: create, preview, schedule, send, pause, resume, cancel, report,
and ``bounces`` (delivery reports that came back by mail).

A template file is the message: an optional first line ``Subject: ...``, a blank line,
then the body; each ``--template`` is one A/B variant (A, B, ...), and the n-th
``--html`` file its HTML body (email). All are Jinja2 with the fields
``docs/campaigns.md`` lists.

Exit codes: 0 done; 1 the store failed or a send stopped with messages failed;
2 a bad campaign, template, segment, setting or usage.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.markup import escape

from omnicrm.cli._common import Context, console, errors, fail, shop_option

if TYPE_CHECKING:
    from omnicrm.app.config import Shop
    from omnicrm.app.runtime import Runtime
    from omnicrm.engage.results import Results
    from omnicrm.engage.sender import Sender
    from omnicrm.engage.stats import Difference


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@contextlib.contextmanager
def _runtime(ctx: click.Context, shop: str | None) -> Iterator[tuple[Runtime, Shop]]:
    """The runtime and the shop; campaign mistakes exit 2 with their reason."""
    from omnicrm.engage.campaigns import CampaignError
    from omnicrm.engage.coupons import CouponError
    from omnicrm.engage.templates import TemplateError

    obj = ctx.find_object(Context)
    assert obj is not None
    with errors():
        runtime = obj.runtime()
        try:
            chosen = runtime.shop(shop or _parent_shop(ctx))
            try:
                yield runtime, chosen
            except (CampaignError, CouponError, TemplateError) as exc:
                fail(str(exc), 2)
        finally:
            runtime.close()


def _parent_shop(ctx: click.Context) -> str | None:
    parent = ctx.parent.params.get("shop") if ctx.parent is not None else None
    return parent if isinstance(parent, str) else None


def _sender(runtime: Runtime, shop: Shop) -> Sender:
    from zoneinfo import ZoneInfo

    from omnicrm.engage.sender import Sender

    return Sender(
        runtime.store,
        runtime.host,
        shop=shop.id,
        shop_name=shop.name,
        settings=shop.messaging,
        tz=ZoneInfo(shop.timezone),
        links=runtime.links(),
        connections=runtime.config.connections,
    )


def read_template(path: Path) -> tuple[str | None, str]:
    """(subject, body) of a template file: 'Subject: ...', a blank line, the body."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise click.BadParameter(f"{path}: cannot read: {exc}") from None
    first, _, rest = text.partition("\n")
    if first.lower().startswith("subject:"):
        return first.split(":", 1)[1].strip() or None, rest.lstrip("\n")
    return None, text


def _read_html(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise click.BadParameter(f"{path}: cannot read: {exc}") from None


def _when(value: str | None, tz_name: str) -> dt.datetime | None:
    """An ISO time; without an offset it is read in the shop's timezone."""
    if value is None:
        return None
    from zoneinfo import ZoneInfo

    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        fail(f"--at: not an ISO date and time: {value!r} (e.g. 2026-12-24T10:00)", 2)
    return moment if moment.tzinfo else moment.replace(tzinfo=ZoneInfo(tz_name))


@click.group("campaigns", invoke_without_command=True)
@shop_option
@click.pass_context
def campaigns_group(ctx: click.Context, shop: str | None) -> None:
    """Campaigns: a segment, a message and a medium; planned, sent once, reported."""
    if ctx.invoked_subcommand is not None:
        return
    from omnicrm.engage import campaigns

    with _runtime(ctx, shop) as (runtime, chosen), runtime.store.engine.connect() as conn:
        listed = campaigns.list_campaigns(conn, shop=chosen.id)
    if not listed:
        console.print(f"no campaigns in shop {escape(chosen.id)} yet (`omnicrm campaigns create`)")
    for c in listed:
        console.print(
            f"{escape(c.name)}  {c.medium.value}  {c.status}  segment: {escape(c.segment)}",
            highlight=False,
        )


@campaigns_group.command()
@click.argument("name")
@click.option("--segment", required=True, help="A segment's name or an expression.")
@click.option("--medium", default="email", show_default=True, help="email, sms, line, postal.")
@click.option(
    "--template",
    "templates",
    required=True,
    multiple=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="A message file; give several for A/B variants.",
)
@click.option(
    "--html",
    "htmls",
    multiple=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="The HTML body of the n-th --template's variant (email).",
)
@click.option("--holdout", type=float, default=None, help="Share receiving nothing (0 to 0.5).")
@click.option("--at", "at", default=None, help="Send at this time (ISO; shop's zone if bare).")
@click.option(
    "--tracking/--no-tracking",
    default=None,
    help="Track opens and clicks (default: [messaging] tracking, else on with [web] base_url).",
)
@click.option(
    "--attribution-days",
    type=click.IntRange(1, 90),
    default=None,
    help="An order this many days after the message is its conversion "
    "(default: [messaging] attribution_days, 7).",
)
@click.option(
    "--coupon",
    default=None,
    metavar="SPEC",
    help="A unique coupon code per recipient ({{ coupon_code }}): '10%' or '500' (an "
    "amount), then min=AMOUNT, expires=YYYY-MM-DD (required), prefix=LETTERS; e.g. "
    "'10%,min=3000,expires=2027-01-31,prefix=XMAS'.",
)
@click.option(
    "--coupon-connection",
    default=None,
    metavar="NAME",
    help="The connection whose platform creates the codes (default: the shop's only one that can).",
)
@shop_option
@click.pass_context
def create(
    ctx: click.Context,
    name: str,
    segment: str,
    medium: str,
    templates: tuple[Path, ...],
    htmls: tuple[Path, ...],
    holdout: float | None,
    at: str | None,
    tracking: bool | None,
    attribution_days: int | None,
    coupon: str | None,
    coupon_connection: str | None,
    shop: str | None,
) -> None:
    """Create a campaign; refused, with the reason, if any part of it is wrong."""
    from zoneinfo import ZoneInfo

    from omnicrm.core.records import Medium
    from omnicrm.engage import campaigns, coupons

    try:
        chosen_medium = Medium(medium)
    except ValueError:
        fail(f"--medium: one of {', '.join(m.value for m in Medium)}, not {medium!r}", 2)
    if len(htmls) > len(templates):
        fail(f"--html: {len(htmls)} HTML bodies for {len(templates)} --template(s)", 2)
    variants = []
    for n, path in enumerate(templates):
        subject, body = read_template(path)
        page = _read_html(htmls[n]) if n < len(htmls) else None
        variants.append(
            campaigns.Variant(name=chr(ord("A") + n), subject=subject, body=body, html=page)
        )
    if coupon_connection is not None and coupon is None:
        fail("--coupon-connection needs --coupon", 2)
    with _runtime(ctx, shop) as (runtime, chosen):
        now = _now()
        spec = (
            None
            if coupon is None
            else coupons.parse_spec(
                coupon,
                title=f"omnicrm {name}",
                currency=chosen.currency,
                tz=ZoneInfo(chosen.timezone),
                now=now,
            )
        )
        where = (
            None
            if coupon is None
            else coupons.platform_connection(
                runtime.host,
                list(runtime.config.connections.values()),
                shop=chosen.id,
                chosen=coupon_connection,
            )
        )
        with runtime.store.engine.begin() as conn:
            cid = campaigns.create(
                conn,
                runtime.host,
                chosen.messaging,
                shop=chosen.id,
                name=name,
                segment=segment,
                medium=chosen_medium,
                variants=variants,
                holdout=holdout,
                scheduled_at=_when(at, chosen.timezone),
                tracking=tracking,
                attribution_days=attribution_days,
                now=now,
                coupon=spec,
                coupon_connection=where,
            )
    console.print(f"campaign {escape(name)} created (id {cid})", highlight=False)
    if spec is not None:
        place = (
            f"created on {where} before sending"
            if where
            else "kept in omnicrm only (no connection of the shop creates codes: enter them "
            "in your platform)"
        )
        console.print(f"coupon: {escape(coupons.describe(spec))}; codes {escape(place)}")


@campaigns_group.command()
@click.argument("name")
@click.option("--profile", "profile_id", type=int, required=True, help="The profile's id.")
@shop_option
@click.pass_context
def preview(ctx: click.Context, name: str, profile_id: int, shop: str | None) -> None:
    """The message one customer would get, and whether it may be sent to them now."""
    with _runtime(ctx, shop) as (runtime, chosen):
        verdict, message = _sender(runtime, chosen).preview(name, profile_id)
    state = "may be sent" if verdict else f"would not be sent: {verdict.refusal}"
    console.print(f"to: {escape(message.to or '-')}  ({state})", highlight=False)
    if message.subject:
        console.print(f"subject: {escape(message.subject)}", highlight=False)
    console.print("")
    console.print(escape(message.body), highlight=False)


def _move(
    ctx: click.Context, name: str, action: str, shop: str | None, at: str | None = None
) -> None:
    from omnicrm.engage import campaigns

    with _runtime(ctx, shop) as (runtime, chosen), runtime.store.engine.begin() as conn:
        campaign = campaigns.get(conn, name, shop=chosen.id)
        status = campaigns.move(conn, campaign, action, now=_now(), at=_when(at, chosen.timezone))
    console.print(f"campaign {escape(name)}: {status}", highlight=False)


@campaigns_group.command()
@click.argument("name")
@click.option("--at", "at", required=True, help="ISO time (shop's zone if bare).")
@shop_option
@click.pass_context
def schedule(ctx: click.Context, name: str, at: str, shop: str | None) -> None:
    """Send the campaign at a time (`omnicrm campaigns send` sends it once due)."""
    _move(ctx, name, "schedule", shop, at)


def _mover(action: str, doc: str) -> None:
    """Add ``omnicrm campaigns <action> NAME``."""

    def command(ctx: click.Context, name: str, shop: str | None) -> None:
        _move(ctx, name, action, shop)

    command.__doc__ = doc
    campaigns_group.command(action)(
        click.argument("name")(shop_option(click.pass_context(command)))
    )


_mover("pause", "Stop sending after the message in hand; resume sends the rest.")
_mover("resume", "Let a paused campaign send again.")
_mover("cancel", "Cancel the campaign: nothing more is sent.")


@campaigns_group.command()
@click.argument("name")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Send at most N now.")
@click.option("--now", "now_flag", is_flag=True, help="Send a scheduled campaign before its time.")
@shop_option
@click.pass_context
def send(
    ctx: click.Context, name: str, limit: int | None, now_flag: bool, shop: str | None
) -> None:
    """Plan the campaign if it is not yet (its recipients fixed), then send it."""
    from zoneinfo import ZoneInfo

    from omnicrm.engage import campaigns

    now = _now()
    with _runtime(ctx, shop) as (runtime, chosen):
        with runtime.store.engine.begin() as conn:
            campaign = campaigns.get(conn, name, shop=chosen.id)
            if campaign.status in ("draft", "scheduled"):
                due = campaign.scheduled_at
                if due is not None and due > now and not now_flag:
                    fail(
                        f"campaign {name} is scheduled for {due.isoformat()}: "
                        "send it then, or now with --now",
                        2,
                    )
                planned = campaigns.plan(
                    conn,
                    campaign,
                    chosen.messaging,
                    now=now,
                    tz=ZoneInfo(chosen.timezone),
                    base_url=runtime.config.web.base_url,
                )
                console.print(
                    f"planned {planned.total:,}: {planned.planned:,} to send, "
                    f"suppressed {planned.suppressed or 'none'}",
                    highlight=False,
                )
        result = _sender(runtime, chosen).send(name, limit=limit)
    console.print(
        f"sent {result.sent:,}, rejected {result.rejected:,}, failed {result.failed:,}, "
        f"suppressed {result.suppressed or 'none'}",
        highlight=False,
    )
    if result.waiting_until:
        console.print(f"quiet hours: sending waits until {result.waiting_until.isoformat()}")
    elif result.stopped:
        console.print(f"stopped: the campaign is {result.stopped}")
    if result.failed:
        ctx.exit(1)


@campaigns_group.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@shop_option
@click.pass_context
def bounces(ctx: click.Context, files: tuple[Path, ...], shop: str | None) -> None:
    """Read delivery reports (bounces, RFC 3464) from FILES (.eml files, mbox files,
    Maildirs), match each to the email it reports on and put hard-bounced addresses
    (5.1.x, 5.2.1) on the shop's suppression list; list what matched and what did not.
    Temporary failures and delays suppress nothing."""
    from omnicrm.engage.bounces import Outcome, apply, read_reports
    from omnicrm.errors import DataError

    with _runtime(ctx, shop) as (runtime, chosen):
        try:
            found = read_reports(files)  # every file read before anything is written
        except DataError as exc:
            fail(str(exc), 2)
        with runtime.store.engine.begin() as conn:
            done = apply(conn, found.failures, shop=chosen.id, now=_now())
    for matched in done:
        f = matched.failure
        style = {Outcome.SUPPRESSED: "red", Outcome.UNMATCHED: "yellow"}.get(matched.outcome)
        what = f"{f.status or '-'} {f.action or '-'}"
        whom = matched.address or f.recipient or "(no recipient)"
        campaign = f" (campaign {matched.campaign})" if matched.campaign else ""
        text = f"{escape(whom)}{escape(campaign)}: {what}: {matched.outcome.value}"
        console.print(
            f"[{style}]{text}[/]" if style else text,
            f"  [dim]{escape(f.where)}[/]",
            highlight=False,
        )
    counts: dict[str, int] = {}
    for matched in done:
        counts[matched.outcome.value] = counts.get(matched.outcome.value, 0) + 1
    summary = ", ".join(f"{n} {what}" for what, n in counts.items()) or "no failure reported"
    console.print(
        f"{found.read} message(s) read, {len(found.failures)} failure(s): {summary}; "
        f"{len(found.not_reports)} not a delivery report",
        highlight=False,
    )


@campaigns_group.command()
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="The figures as JSON.")
@shop_option
@click.pass_context
def report(ctx: click.Context, name: str, as_json: bool, shop: str | None) -> None:
    """Per variant and the hold-out group: planned, sent, suppressed by reason,
    delivered, bounced, opened, clicked, converted and revenue; each variant's lift
    over the hold-out group with its 95% interval; coupons redeemed and their orders'
    revenue."""
    import json

    from omnicrm.engage import campaigns, coupons
    from omnicrm.engage.results import campaign_results

    with _runtime(ctx, shop) as (runtime, chosen), runtime.store.engine.connect() as conn:
        campaign = campaigns.get(conn, name, shop=chosen.id)
        try:
            tracked = campaigns.tracks(campaign, chosen.messaging, runtime.config.web.base_url)
        except campaigns.CampaignError:
            tracked = False  # told to track, never could: nothing was tracked
        found = campaign_results(
            conn, campaign, window=campaign.window(chosen.messaging), tracked=tracked
        )
        unknown = list(campaigns.unknown_rows(conn, campaign))
        redeemed = coupons.redemptions(conn, shop=chosen.id, campaign_id=campaign.id)
    if as_json:
        document = found.to_json()
        document["currency"] = chosen.currency
        document["coupons"] = {
            variant: {"redeemed": used.redeemed, "revenue": str(used.revenue)}
            for variant, used in redeemed.items()
        }
        click.echo(json.dumps(document, ensure_ascii=False, indent=2))
        return
    print_results(found, chosen.currency, chosen.timezone, now=_now())
    for variant, used in redeemed.items():
        console.print(
            f"coupons, variant {escape(variant)}: redeemed {used.redeemed:,}, revenue "
            f"{_money(float(used.revenue), chosen.currency)}",
            highlight=False,
        )
    if unknown:
        console.print(
            f"[yellow]{len(unknown)} message(s) handed over without an answer (unknown; "
            "never resent without your word):[/]"
        )
        for profile_id, message_id, _address in unknown[:20]:
            console.print(f"  profile {profile_id}: {escape(message_id)}", highlight=False)


def _money(amount: float, currency: str) -> str:
    digits = 0 if currency in ("JPY", "KRW", "TWD") else 2
    return f"{amount:,.{digits}f} {currency}"


def _interval(d: Difference, show: Callable[[float], str]) -> str:
    import math

    if math.isnan(d.low):
        return f"{show(d.value)} (too few to tell)" if not math.isnan(d.value) else "-"
    mark = " [bold green]significant[/]" if d.significant else ""
    return f"{show(d.value)} ({d.confidence:.0%}: {show(d.low)} to {show(d.high)}){mark}"


def print_results(found: Results, currency: str, timezone: str, *, now: dt.datetime) -> None:
    """The campaign's figures, a column per variant and one for the hold-out group,
    then each variant against the hold-out group."""
    import math
    from zoneinfo import ZoneInfo

    from rich import box
    from rich.table import Table

    from omnicrm.engage.campaigns import HOLDOUT

    campaign = found.campaign
    zone = ZoneInfo(timezone)
    console.print(
        f"[bold]{escape(campaign.name)}[/] ({campaign.medium.value}, {campaign.status}): "
        f"planned {sum(g.planned for g in found.groups):,}, "
        f"sent {sum(g.sent for g in found.groups):,}, "
        f"suppressed {sum(sum(g.suppressed.values()) for g in found.groups):,}; tracking "
        f"{'on' if found.tracked else 'off'}; conversions: orders within "
        f"{found.window.days} day(s) of the message",
        highlight=False,
    )
    if found.sent_from is not None and found.counted_until is not None:
        still = " (still open: conversions may yet come in)" if found.open(now) else ""
        console.print(
            f"sent from {found.sent_from.astimezone(zone):%Y-%m-%d %H:%M}; windows close "
            f"{found.counted_until.astimezone(zone):%Y-%m-%d %H:%M}{still}",
            highlight=False,
        )
    groups = found.groups
    table = Table("", box=box.SIMPLE)
    for g in groups:
        table.add_column("hold-out" if g.name == HOLDOUT else f"variant {g.name}", justify="right")

    def row(label: str, values: list[str]) -> None:
        table.add_row(label, *values)

    def pct(x: float) -> str:
        return "-" if math.isnan(x) else f"{x:.2%}"

    row("planned", [f"{g.planned:,}" for g in groups])
    row("sent", [f"{g.sent:,}" for g in groups])
    for status in ("rejected", "failed", "unknown", "planned", "claimed", "cancelled"):
        if any(g.statuses.get(status) for g in groups):
            row(f"  {status}", [f"{g.statuses.get(status, 0):,}" for g in groups])
    reasons = sorted({r for g in groups for r in g.suppressed})
    row("suppressed", [f"{sum(g.suppressed.values()):,}" for g in groups])
    for reason in reasons:
        label = "  held out" if reason == HOLDOUT else f"  {reason}"
        row(label, [f"{g.suppressed.get(reason, 0):,}" for g in groups])
    row("delivered", [f"{g.delivered:,}" for g in groups])
    row("bounced", [f"{g.bounced:,}" for g in groups])
    tracked = found.tracked
    row("opened", [f"{g.opened:,}" if tracked and g.name != HOLDOUT else "-" for g in groups])
    row("clicked", [f"{g.clicked:,}" if tracked and g.name != HOLDOUT else "-" for g in groups])
    row("recipients", [f"{g.recipients:,}" for g in groups])
    row("converted", [f"{g.converted:,}" for g in groups])
    row("conversion rate", [pct(g.conversion_rate) for g in groups])
    row("revenue", [_money(float(g.revenue), currency) for g in groups])
    row(
        "revenue / recipient",
        [
            "-"
            if math.isnan(g.revenue_per_recipient)
            else _money(g.revenue_per_recipient, currency)
            for g in groups
        ],
    )
    console.print(table)
    console.print(
        "recipients: messages sent (a variant); members who would have been sent it "
        "(the hold-out group)",
        style="dim",
        highlight=False,
    )
    if not found.comparisons:
        console.print("no hold-out group: nothing to compare the variants with", style="dim")
    for k in found.comparisons:
        points = _interval(k.conversion_rate, lambda x: f"{x * 100:+.2f} pt")
        money = _interval(k.revenue_per_recipient, lambda x: f"{x:+,.0f} {currency}")
        console.print(
            f"variant {escape(k.variant)} vs hold-out: conversion rate {points}; "
            f"revenue per recipient {money}",
            highlight=False,
        )
