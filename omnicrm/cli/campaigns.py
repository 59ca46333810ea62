"""``omnicrm campaigns``: create, preview, schedule, send, pause, resume, cancel, report,
``bounces`` (delivery reports that came back by mail), and the shop's suppression list
(``suppressions``, ``unsuppress``).

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
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.markup import escape

from omnicrm.cli._common import Context, console, errors, fail, shop_option

if TYPE_CHECKING:
    from omnicrm.app.config import Shop
    from omnicrm.app.runtime import Runtime
    from omnicrm.engage.results import Results
    from omnicrm.engage.sender import Sender, SendResult


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
    return runtime.sender(shop.id)


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
    """Send the campaign at a time: `omnicrm run` (and the demo) sends it then."""
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
    from omnicrm.engage import campaigns
    from omnicrm.engage.scheduled import start

    now = _now()
    with _runtime(ctx, shop) as (runtime, chosen):
        sender = _sender(runtime, chosen)
        with runtime.store.engine.connect() as conn:
            campaign = campaigns.get(conn, name, shop=chosen.id)
        due = campaign.scheduled_at
        early = due is not None and due > now and not now_flag
        if campaign.status in ("draft", "scheduled") and early:
            assert due is not None
            fail(
                f"campaign {name} is scheduled for {due.isoformat()}: "
                "send it then, or now with --now",
                2,
            )
        planned = start(sender, name, now=now)
        if planned is not None:
            console.print(
                f"planned {planned.total:,}: {planned.planned:,} to send, "
                f"suppressed {planned.suppressed or 'none'}",
                highlight=False,
            )
        result = sender.send(name, limit=limit)
    console.print(
        f"sent {result.sent:,}, rejected {result.rejected:,}, failed {result.failed:,}, "
        f"suppressed {result.suppressed or 'none'}",
        highlight=False,
    )
    if result.waiting_until:
        console.print(
            escape(_quiet_note(name, result, chosen.timezone, limited=limit is not None)),
            highlight=False,
            soft_wrap=True,
        )
    elif result.stopped:
        console.print(f"stopped: the campaign is {result.stopped}")
    if result.failed:
        ctx.exit(1)


def _quiet_note(name: str, result: SendResult, timezone: str, *, limited: bool) -> str:
    """What happens to the rest of a send the quiet hours stopped, truthfully: the
    scheduler goes on with it only where one runs."""
    from zoneinfo import ZoneInfo

    from omnicrm.render import ZONED, local_time

    assert result.waiting_until is not None
    until = local_time(result.waiting_until, ZoneInfo(timezone), ZONED)
    again = f"`omnicrm campaigns send {name}`"
    if result.scheduled:
        return (
            f"quiet hours until {until}: the rest goes out by itself then while "
            f"`omnicrm run` (or `omnicrm demo`) is running; if none is, send it then with {again}"
        )
    if limited:
        return (
            f"quiet hours until {until}: send the rest then with {again} (--limit: not scheduled)"
        )
    return f"quiet hours until {until}; the campaign was paused or cancelled meanwhile"


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


_MEDIA = ("email", "sms", "line", "postal")


@campaigns_group.command()
@click.option("--medium", type=click.Choice(_MEDIA), default=None, help="Of this medium only.")
@click.option(
    "--reason",
    type=click.Choice(("unsubscribed", "bounced")),
    default=None,
    help="For this reason only.",
)
@click.option("--json", "as_json", is_flag=True, help="The list as JSON.")
@shop_option
@click.pass_context
def suppressions(
    ctx: click.Context, medium: str | None, reason: str | None, as_json: bool, shop: str | None
) -> None:
    """The shop's suppression list: the addresses never sent to, why (unsubscribed,
    bounced) and since when, oldest first."""
    import json
    from zoneinfo import ZoneInfo

    from omnicrm.core.consent import Refusal, suppression_list
    from omnicrm.core.records import Medium
    from omnicrm.render import ZONED, local_time

    with _runtime(ctx, shop) as (runtime, chosen), runtime.store.engine.connect() as conn:
        listed = suppression_list(
            conn,
            shop=chosen.id,
            medium=Medium(medium) if medium else None,
            reason=Refusal(reason) if reason else None,
        )
    if as_json:
        document = [
            {
                "medium": s.medium.value,
                "address": s.address,
                "reason": s.reason.value,
                "since": s.since.isoformat(),
                "detail": s.detail,
            }
            for s in listed
        ]
        click.echo(json.dumps(document, ensure_ascii=False, indent=2))
        return
    if not listed:
        console.print(f"no suppressed address in shop {escape(chosen.id)}", highlight=False)
    zone = ZoneInfo(chosen.timezone)
    for s in listed:
        detail = f"  ({escape(s.detail)})" if s.detail else ""
        console.print(
            f"{s.medium.value}  {escape(s.address)}  {s.reason.value}  "
            f"since {local_time(s.since, zone, ZONED)}{detail}",
            highlight=False,
            soft_wrap=True,  # one line an entry, for grep
        )


@campaigns_group.command()
@click.argument("address")
@click.option("--medium", type=click.Choice(_MEDIA), required=True, help="The address's medium.")
@click.option("--reason", "why", required=True, help="Why it is lifted (kept for the record).")
@click.option(
    "--by",
    default=None,
    help="Who lifts it (kept for the record; default: your login name).",
)
@shop_option
@click.pass_context
def unsuppress(
    ctx: click.Context, address: str, medium: str, why: str, by: str | None, shop: str | None
) -> None:
    """Take a bounced ADDRESS off the shop's suppression list (the mailbox is fixed, the
    bounce was wrong), recording who, why and when. An unsubscribed address is refused:
    a person's opt-out is lifted only by their own opt-in. Consent is not changed."""
    import getpass

    from omnicrm.core.records import Medium
    from omnicrm.engage.permission import lift_bounce
    from omnicrm.errors import DataError

    who = by if by is not None else getpass.getuser()
    with _runtime(ctx, shop) as (runtime, chosen), runtime.store.engine.begin() as conn:
        try:
            lifted = lift_bounce(
                conn,
                shop=chosen.id,
                medium=Medium(medium),
                address=address,
                at=_now(),
                by=who,
                why=why,
            )
        except DataError as exc:
            fail(str(exc), 2)
    console.print(
        f"{lifted.medium.value} {escape(lifted.address)}: {lifted.reason.value} lifted "
        f"by {escape(who)} ({escape(why)}); sent to again where the person opted in",
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
    from omnicrm.engage.results import results_of
    from omnicrm.views import report_amount

    with _runtime(ctx, shop) as (runtime, chosen), runtime.store.engine.connect() as conn:
        campaign = campaigns.get(conn, name, shop=chosen.id)
        found = results_of(conn, campaign, chosen.messaging, runtime.config.web.base_url)
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
            f"{report_amount(float(used.revenue), chosen.currency)}",
            highlight=False,
        )
    if unknown:
        console.print(
            f"[yellow]{len(unknown)} message(s) handed over without an answer (unknown; "
            "never resent without your word):[/]"
        )
        for profile_id, message_id, _address in unknown[:20]:
            console.print(f"  profile {profile_id}: {escape(message_id)}", highlight=False)


def print_results(found: Results, currency: str, timezone: str, *, now: dt.datetime) -> None:
    """The campaign's figures, a column per variant and one for the hold-out group,
    then each variant against the hold-out group (see omnicrm.views.campaign_report)."""
    from zoneinfo import ZoneInfo

    from omnicrm.views import campaign_report

    for part in campaign_report(found, currency, ZoneInfo(timezone), now=now):
        console.print(part, highlight=False)
