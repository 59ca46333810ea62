"""``omnicrm demo``: the installed channels' sandboxes, synced on a schedule.

The demo writes the user config (``omnicrm.toml`` in the data dir) pointing at its
store, so ``omnicrm segments``, ``omnicrm points`` and the rest work from any directory
afterwards. The installed dispatchers' sandboxes (the email plugin's SMTP catcher) start
too, each demo shop's messaging goes to them, what arrives is kept under the data dir,
and each shop gets a ready campaign (:data:`DEMO_CAMPAIGN`) that the operator sends
from the terminal UI's campaigns screen (``m``, then ``s``), or with ``omnicrm campaigns
send`` while the demo runs; one scheduled with ``omnicrm campaigns schedule`` goes at its
time, sent by the demo's scheduler. Exit codes: 0 done; 1 a sync failed; 2 no sandbox or
bad usage.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import inspect
import json
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.markup import escape

from omnicrm.cli._common import Context, console, err_console, errors, fail
from omnicrm.cli._logging import log_runs
from omnicrm.render import shop_zone

if TYPE_CHECKING:  # the store and the CRM load when a command runs, not for --help
    from sqlalchemy import Connection as DbConnection

    from omnicrm.app.config import Connection
    from omnicrm.app.runtime import Runtime
    from omnicrm.core.dispatch import Dispatcher
    from omnicrm.engage.settings import MessagingSettings


# The first line of the config the demo writes: the demo rewrites only a file it wrote.
DEMO_MARK = "# Written by `omnicrm demo`."


# The demo's client shops: (id, name). Each gets its own sandbox stores; their customer
# lists overlap, and each shop keeps its own customer base.
DEMO_SHOPS = (("tokyo-tea", "東京茶舗"), ("osaka-sweets", "大阪スイーツ"))

# Where the dispatchers' sandboxes keep what they receive: DIR/<shop>-<dispatcher>.
DEMO_MESSAGES = "demo-messages"

# Each demo shop's ready campaign: a nudge to one-time buyers, A/B on the subject line,
# a tenth held out to measure what the nudge changed.
DEMO_CAMPAIGN = "second-purchase"
DEMO_SEGMENT = "lifecycle:second-purchase-candidate"
DEMO_HOLDOUT = 0.1
DEMO_SUBJECTS = (
    "{{ name }}、2回目のお買い物に{{ points }}ポイントをお使いいただけます",
    "【{{ shop_name }}】{{ name }}へ 次のお買い物のご案内",
)
DEMO_BODY = """{{ name }}

先日は{{ shop_name }}をご利用いただき、誠にありがとうございました。
{% if last_purchase %}お買い上げいただいた「{{ last_purchase }}」はいかがでしたか。
{% endif %}
ただいまのポイント残高は {{ points }} ポイントです。
次のお買い物で1ポイント1円としてお使いいただけます。

またのご利用を心よりお待ちしております。
"""


# Each demo shop's ready LINE campaign, to the customers linked to the LINE emulator's
# friends who opted in; it arrives in DIR/<shop>-line/delivered.jsonl.
DEMO_LINE_CAMPAIGN = "line-points"
DEMO_LINE_SEGMENT = "number_of_orders >= 1"
DEMO_LINE_BODY = """{{ name }}
{{ shop_name }}のLINE公式アカウントです。
ただいまのポイント残高は {{ points }} ポイントです。次のお買い物でお使いいただけます。
"""
# Demo customers 0..19 of each shop's Shopify store are linked to the LINE emulator's
# friends demo_user(client, 0..19) by the store's LINE-connect app (a customer
# metafield the sync reads); the first 15 opted in to LINE (a sign-up form), the other
# 5 did not: linked, but never messaged.
DEMO_LINE_LINKED = 20
DEMO_LINE_OPTED_IN = 15
DEMO_LINE_SOURCE = "demo: the shop's LINE sign-up form (made up)"

# Each demo shop's cart recovery (email): one message an hour after a Shopify checkout
# was left, naming what is in the cart, with Shopify's link back to it; the scheduler's
# campaign check sends it as the month's campaign cart-recovery-YYYY-MM.
DEMO_RECOVERY_DELAY = "1h"
DEMO_RECOVERY_SUBJECT = "{{ name }}、お買い物の途中です"
DEMO_RECOVERY_BODY = """{{ name }}

{{ shop_name }}のカートに{{ checkout.item_count }}点 ({{ checkout.total }}円) が残っています。
{% for line in checkout.lines %}・{{ line.name }} {{ line.quantity }}点  {{ line.price }}円
{% endfor %}
こちらからお手続きを続けられます:
{{ checkout.recovery_url }}
"""

# Where the demo keeps the secrets of its sandboxes' settings (a LINE channel's token
# and secret), one 0600 file each, named in the config as { file = "PATH" }.
DEMO_SECRETS = "demo-secrets"


def _toml(value: object) -> str:
    """A TOML value: a JSON string is a TOML basic string, and so are its escapes."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(str(value), ensure_ascii=False)


def _messaging_text(shop_id: str, messaging: MessagingSettings) -> str:
    """``[shops.ID.messaging.dispatchers.MEDIUM]`` tables of the demo's sandboxes; a
    secret setting is written as the file the demo keeps it in, never its value."""
    text = ""
    for medium, choice in messaging.dispatchers.items():
        table = f"shops.{shop_id}.messaging.dispatchers.{medium.value}"
        kept = _secret_files(shop_id, choice.dispatcher)
        settings = "".join(
            f"{key} = {{ file = {_toml(kept[key])} }}\n" if key in kept else f"{key} = {_toml(v)}\n"
            for key, v in choice.settings.items()
        )
        text += (
            f"\n[{table}]\ndispatcher = {_toml(choice.dispatcher)}\n"
            f"\n[{table}.settings]\n{settings}"
        )
    if messaging.cart_recovery is not None:
        text += (
            f"\n[shops.{shop_id}.messaging.cart_recovery]\n"
            f"delay = {_toml(DEMO_RECOVERY_DELAY)}\n"
            f"subject = {_toml(DEMO_RECOVERY_SUBJECT)}\n"
            f"body = {_toml(DEMO_RECOVERY_BODY)}\n"
        )
    return text


_DEMO_OFFER = """kind = "popup"
text = "2回目のご来店ありがとうございます。初回購入10%OFFクーポンをどうぞ"
coupon = "WELCOME10"
segment = "lifecycle_stage = 'prospect'"
min_visits = 2
no_purchase_yet = true
max_impressions = 3
variants = [{ name = "A" }, { name = "B", coupon = "WELCOME15", text = "今だけ15%OFF" }]
"""


def demo_config_text(
    store_url: str,
    timezone: str,
    messaging: Mapping[str, MessagingSettings] | None = None,
) -> str:
    """The user config the demo leaves: its store, timezone and shops, no connections;
    each shop's messaging through the dispatchers' sandboxes the demo started."""
    messaging = messaging or {}
    shops = "".join(
        f"\n[shops.{shop_id}]\nname = {_toml(name)}\ntimezone = {_toml(timezone)}\n"
        # The registers' paper bags and gift wrapping are sold, but never recommended.
        + f'\n[shops.{shop_id}.products]\nexclude = ["BAG-*", "WRAP"]\n'
        # An on-site offer (docs/onsite.md): `omnicrm offers report` measures it once a
        # storefront serves it.
        + f"\n[shops.{shop_id}.offers.second-visit]\n{_DEMO_OFFER}"
        + (_messaging_text(shop_id, messaging[shop_id]) if shop_id in messaging else "")
        for shop_id, name in DEMO_SHOPS
    )
    first = DEMO_SHOPS[0][0]
    sends = ""
    if any(m.dispatchers for m in messaging.values()):
        sends = (
            "\n# Each shop's messages go to local servers the demo started (an SMTP catcher and\n"
            "# a LINE emulator keeping them under the data dir; the emulator's made-up token\n"
            "# and secret in 0600 files), which live only while `omnicrm demo` runs:\n"
            f"# `omnicrm campaigns send {DEMO_CAMPAIGN} --shop {first}` needs the demo running."
        )
    return f"""{DEMO_MARK}
# omnicrm commands read this file when there is no ./omnicrm.toml and neither --config
# nor $OMNICRM_CONFIG is given: it points them at the demo's store. The demo's sandbox
# connections live only while `omnicrm demo` runs, so none is listed here.
# The demo runs two client shops: name one with --shop (`omnicrm segments --shop {first}`).
# For a real shop, write ./omnicrm.toml with `omnicrm init`.{sends}

[store]
url = {_toml(store_url)}

[scheduler]
timezone = "{timezone}"
{shops}"""


def write_demo_config(
    store_url: str, timezone: str, messaging: Mapping[str, MessagingSettings] | None = None
) -> Path | None:
    """Write (or refresh) the user config for the demo's store; None if the user keeps
    a config of their own there, which is left alone."""
    from omnicrm.app.config import user_config

    path = user_config()
    if path.exists():
        try:
            head = path.read_text(encoding="utf-8").split("\n", 1)[0]
        except (OSError, UnicodeDecodeError):
            head = ""
        if head != DEMO_MARK:
            return None
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(demo_config_text(store_url, timezone, messaging), encoding="utf-8")
    partial.replace(path)  # never a half-written config
    return path


def _say_where(path: Path | None) -> None:
    from omnicrm.app.config import user_config

    if path is None:
        err_console.print(
            f"note: {escape(str(user_config()))} is a config of your own, so commands run "
            "outside a directory with omnicrm.toml read it, not the demo's store",
            highlight=False,
        )
        return
    console.print(
        f"config: {escape(str(path))} - `omnicrm shops`, `omnicrm status`, "
        f"`omnicrm segments --shop {DEMO_SHOPS[0][0]}` and the rest read the demo's store "
        "through it from any directory without an omnicrm.toml",
        highlight=False,
    )


def _duration_option(ctx: click.Context, param: click.Parameter, value: str) -> dt.timedelta:
    from omnicrm.app.config import parse_duration

    try:
        return parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@click.command("demo")
@click.option(
    "--every",
    default="30s",
    show_default=True,
    callback=_duration_option,
    help="How often to sync, e.g. 30s, 5m.",
)
@click.option("--once", is_flag=True, help="Sync each sandbox once, print the status, exit.")
@click.option(
    "--tui/--no-tui",
    default=None,
    help="Watch in the terminal UI (default: when the output is a terminal).",
)
@click.pass_obj
def demo(obj: Context, every: dt.timedelta, once: bool, tui: bool | None) -> None:
    """Start the local sandboxes of installed channels and sync them on a schedule,
    watched in the terminal UI.

    Uses the embedded default store (SQLite in the user's data dir) and writes the
    config other commands then read (omnicrm.toml in the data dir).
    """
    from omnicrm.app.config import (
        Config,
        Connection,
        SchedulerSection,
        Shop,
        default_store_url,
    )
    from omnicrm.app.runtime import Runtime
    from omnicrm.cli import _serve
    from omnicrm.core.records import Medium

    with errors(), contextlib.ExitStack() as stack:
        runtime = Runtime.load(None)
        sandboxes = {n: ct for n, ct in runtime.host.channel_types.items() if ct.sandbox}
        if not sandboxes:
            fail("no installed channel plugin has a sandbox (see `omnicrm plugins`)", 2)
        scheduler = SchedulerSection()
        messaging = _start_dispatchers(stack, runtime, [shop_id for shop_id, _ in DEMO_SHOPS])
        shops = {
            shop_id: Shop(
                id=shop_id, name=name, timezone=scheduler.timezone, messaging=messaging[shop_id]
            )
            for shop_id, name in DEMO_SHOPS
        }
        connections: dict[str, Connection] = {}
        for client, shop_id in enumerate(shops):
            for name, channel in sorted(sandboxes.items()):
                assert channel.sandbox is not None
                if not _serves_shop(channel.sandbox, client):
                    continue  # a sandbox of one store only: in the first shop
                title = channel.title or name
                console.print(f"starting the {title} sandbox of shop {shop_id} ...")
                options: dict[str, object] = {}
                if client and _serves_clients(channel.sandbox):
                    options["client"] = client
                if _takes(channel.sandbox, "line_users") and Medium.LINE in (
                    messaging[shop_id].dispatchers
                ):
                    # A store whose LINE-connect app linked customers to the emulator's
                    # friends: the sync links them (a customer metafield).
                    from omnicrm.plugins.line.sandbox import demo_user

                    options["line_users"] = {
                        n: demo_user(client, n) for n in range(DEMO_LINE_LINKED)
                    }
                started = channel.sandbox(**options)
                settings = channel.settings.model_validate(dict(stack.enter_context(started)))
                conn_name = f"{shop_id}-{name}"
                connections[conn_name] = Connection(
                    name=conn_name,
                    channel=name,
                    settings=settings,
                    every=every,
                    lookback=dt.timedelta(minutes=1),
                    shop=shop_id,
                )
        runtime.config = Config(
            path=None,
            store_url=default_store_url(),
            scheduler=scheduler,
            connections=connections,
            shops=shops,
        )
        written = write_demo_config(
            runtime.config.store_url, runtime.config.scheduler.timezone, messaging
        )
        ready = ready_campaigns(runtime)
        tz = shop_zone(runtime.config)
        if once:
            log_runs(tz)
            complete = _once(runtime, connections)
            _say_where(written)
            _say_campaigns(ready, running=False)
            if not complete:
                sys.exit(1)
            return
        watch = sys.stdout.isatty() if tui is None else tui
        _say_where(written)
        _say_campaigns(ready, running=True)
        if not watch:
            log_runs(tz)
        _serve(runtime, tui=watch)


def _serves_shop(factory: Callable[..., object], client: int) -> bool:
    """Whether a sandbox runs in the demo's shop number ``client``: the shops its factory
    names in ``demo_clients`` (e.g. EC-CUBE is the second shop's EC site only), else the
    first shop, and the others when it starts other client businesses' stores."""
    only = getattr(factory, "demo_clients", None)
    if only is not None:
        return client in only
    return client == 0 or _serves_clients(factory)


def _serves_clients(factory: Callable[..., object]) -> bool:
    """Whether a sandbox factory starts other client businesses' stores (``client=``)."""
    return _takes(factory, "client")


def _takes(factory: Callable[..., object], keyword: str) -> bool:
    try:
        return keyword in inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return False


def _secret_keys(spec: Dispatcher) -> list[str]:
    """The dispatcher's settings that hold a secret (a LINE channel's token and secret)."""
    fields = spec.settings.model_fields.items()
    return [name for name, f in fields if "Secret" in str(f.annotation)]


# The secret files of each (shop, dispatcher) the demo started: setting -> path.
_SECRET_FILES: dict[tuple[str, str], dict[str, str]] = {}


def _secret_files(shop_id: str, dispatcher: str) -> dict[str, str]:
    return _SECRET_FILES.get((shop_id, dispatcher), {})


def keep_secret(path: Path, value: str) -> None:
    """Write ``value`` to ``path``, readable by its owner only (0600) from the moment
    it exists, replacing what was there whole (never half a file)."""
    import os
    import tempfile

    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)  # mode 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(value + "\n")
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


def _keep_secrets(
    shop_id: str, name: str, spec: Dispatcher, settings: Mapping[str, object]
) -> None:
    """Keep the secrets of a sandbox's ``settings`` in the demo's files (the sandbox
    made them up; each run writes its own), for the config to name."""
    from omnicrm.core.settings import data_dir

    kept: dict[str, str] = {}
    for key in _secret_keys(spec):
        if settings.get(key) is not None:
            path = data_dir() / DEMO_SECRETS / f"{shop_id}-{name}-{key}"
            keep_secret(path, str(settings[key]))
            kept[key] = str(path)
    _SECRET_FILES[(shop_id, name)] = kept


def _start_dispatchers(
    stack: contextlib.ExitStack, runtime: Runtime, shop_ids: list[str]
) -> dict[str, MessagingSettings]:
    """Start each installed dispatcher's sandbox for each demo shop (the first shop
    only, for a sandbox of one sender); each shop's messaging, sending to them."""
    from omnicrm.core.records import Medium
    from omnicrm.core.settings import data_dir
    from omnicrm.engage.settings import (
        CartRecoverySettings,
        DispatcherChoice,
        MessagingSettings,
    )

    sandboxes = {n: d for n, d in runtime.host.dispatchers.items() if d.sandbox}
    found: dict[str, MessagingSettings] = {}
    for client, shop_id in enumerate(shop_ids):
        chosen: dict[Medium, DispatcherChoice] = {}
        for name, spec in sorted(sandboxes.items()):
            assert spec.sandbox is not None
            if spec.medium in chosen or (client and not _serves_clients(spec.sandbox)):
                continue  # one dispatcher per medium; a sandbox of one sender: shop one
            title = spec.title or name
            console.print(f"starting the {title} sandbox of shop {shop_id} ...")
            options: dict[str, object] = {"client": client} if client else {}
            kept = None
            if _takes(spec.sandbox, "keep_in"):
                kept = data_dir() / DEMO_MESSAGES / f"{shop_id}-{name}"
                options["keep_in"] = kept
            settings = dict(stack.enter_context(spec.sandbox(**options)))
            spec.settings.model_validate(settings)  # a broken sandbox fails now, not at send
            # Its secrets (LINE's token and channel secret) go to files of the demo's,
            # which the config names: never written in the config, never printed.
            _keep_secrets(shop_id, name, spec, settings)
            chosen[spec.medium] = DispatcherChoice(dispatcher=name, settings=settings)
            if kept is not None:
                console.print(  # unwrapped: the path stays whole for copying
                    f"{spec.medium.value} of shop {shop_id} goes to the {title} sandbox, "
                    f"kept in {escape(str(kept))}",
                    highlight=False,
                    soft_wrap=True,
                )
        recovery = None
        if Medium.EMAIL in chosen:
            recovery = CartRecoverySettings(
                delay=DEMO_RECOVERY_DELAY,
                subject=DEMO_RECOVERY_SUBJECT,
                body=DEMO_RECOVERY_BODY,
            )
        found[shop_id] = MessagingSettings(dispatchers=chosen, cart_recovery=recovery)
    return found


def ready_campaigns(runtime: Runtime) -> dict[str, list[str]]:
    """Create each demo shop's :data:`DEMO_CAMPAIGN` (a draft: ``campaigns send`` plans
    and sends it), and with the LINE emulator its :data:`DEMO_LINE_CAMPAIGN`, unless the
    shop has them from an earlier run; each shop's ready campaigns."""
    from omnicrm.core.records import Medium
    from omnicrm.crm.segments import ensure_builtin
    from omnicrm.engage import campaigns

    variants = [
        campaigns.Variant(name=chr(ord("A") + n), subject=subject, body=DEMO_BODY)
        for n, subject in enumerate(DEMO_SUBJECTS)
    ]
    line = [campaigns.Variant(name="A", subject=None, body=DEMO_LINE_BODY)]
    ready: dict[str, list[str]] = {}
    now = dt.datetime.now(dt.UTC)
    for shop_id, _ in DEMO_SHOPS:
        shop = runtime.config.shop(shop_id)
        if Medium.EMAIL not in shop.messaging.dispatchers:
            continue  # no email dispatcher has a sandbox here
        with runtime.store.engine.begin() as conn:
            try:
                campaigns.get(conn, DEMO_CAMPAIGN, shop=shop_id)
            except campaigns.CampaignError:
                # The built-in segments arrive with the first CRM refresh: before it too.
                ensure_builtin(conn, shop=shop_id)
                campaigns.create(
                    conn,
                    runtime.host,
                    shop.messaging,
                    shop=shop_id,
                    name=DEMO_CAMPAIGN,
                    segment=DEMO_SEGMENT,
                    medium=Medium.EMAIL,
                    variants=variants,
                    holdout=DEMO_HOLDOUT,
                    now=now,
                )
            ready[shop_id] = [DEMO_CAMPAIGN]
            if Medium.LINE in shop.messaging.dispatchers and _opt_in_line_friends(
                conn, runtime, shop_id, now
            ):
                ready[shop_id].append(DEMO_LINE_CAMPAIGN)
                try:
                    campaigns.get(conn, DEMO_LINE_CAMPAIGN, shop=shop_id)
                except campaigns.CampaignError:
                    campaigns.create(
                        conn,
                        runtime.host,
                        shop.messaging,
                        shop=shop_id,
                        name=DEMO_LINE_CAMPAIGN,
                        segment=DEMO_LINE_SEGMENT,
                        medium=Medium.LINE,
                        variants=line,
                        now=now,
                    )
    return ready


def _opt_in_line_friends(
    conn: DbConnection, runtime: Runtime, shop_id: str, now: dt.datetime
) -> bool:
    """Record the LINE opt-in (a sign-up form, made up) of the first 15 of the demo
    customers the shop's Shopify store links to the LINE emulator's friends, once;
    whether the shop has that store. The sync links all 20 (their LINE-connect app's
    metafield); a link is no consent, so the other 5 are never messaged. Recorded by
    record id before the first sync brings the customers: a consent statement names a
    source customer, not a row."""
    from sqlalchemy import select

    from omnicrm.core.consent import Method, record_consent
    from omnicrm.core.records import ConsentState, Medium
    from omnicrm.core.store.schema import consent_records
    from omnicrm.plugins.shopify.sandbox.data import customer_number

    connection = f"{shop_id}-shopify"
    if connection not in runtime.config.connections:
        return False
    c = consent_records.c
    done = conn.execute(
        select(c.record_id)
        .where(c.shop == shop_id, c.connection == connection, c.source == DEMO_LINE_SOURCE)
        .limit(1)
    ).first()
    if done is None:
        record_consent(
            conn,
            shop=shop_id,
            members=[
                (connection, f"gid://shopify/Customer/{customer_number(number)}")
                for number in range(DEMO_LINE_OPTED_IN)
            ],
            medium=Medium.LINE,
            state=ConsentState.OPTED_IN,
            at=now,
            source=DEMO_LINE_SOURCE,
            method=Method.FORM,
        )
    return True


def _say_campaigns(ready: dict[str, list[str]], *, running: bool) -> None:
    if not ready:
        return
    first = next(iter(ready))
    console.print(
        f"campaigns: {', '.join(ready)} each have {DEMO_CAMPAIGN} ready (email to "
        f"{DEMO_SEGMENT} with an opt-in, subjects A/B, {DEMO_HOLDOUT:.0%} held out)",
        highlight=False,
    )
    console.print(
        f"cart recovery: in {', '.join(ready)}, a checkout left {DEMO_RECOVERY_DELAY} ago gets "
        "one email naming what is in the cart, unless the person bought since "
        "(campaign cart-recovery-YYYY-MM, sent by the scheduler while the demo runs)",
        highlight=False,
    )
    line = [shop for shop, names in ready.items() if DEMO_LINE_CAMPAIGN in names]
    if line:
        console.print(
            f"LINE: {', '.join(line)} each have {DEMO_LINE_CAMPAIGN} ready (LINE to the "
            f"{DEMO_LINE_OPTED_IN} of {DEMO_LINE_LINKED} customers linked to the LINE "
            "emulator's friends who opted in; a link alone is no consent)",
            highlight=False,
        )
    send = f"`omnicrm campaigns send {DEMO_CAMPAIGN} --shop {first}`"
    report = f"`omnicrm campaigns report {DEMO_CAMPAIGN} --shop {first}`"
    if line:
        send += f" (and `omnicrm campaigns send {DEMO_LINE_CAMPAIGN} --shop {line[0]}`)"
    if running:
        console.print(
            f"send it while the demo runs: in the terminal UI press m (campaigns), then s; "
            f"or {send}, then {report}",
            highlight=False,
        )
    else:
        console.print(
            f"sends need the demo's mail catcher: run `omnicrm demo` and, while it runs, {send}",
            highlight=False,
        )


def _once(runtime: Runtime, connections: dict[str, Connection]) -> bool:
    """Sync each sandbox once and print the status and each shop's summary; True if
    all ran."""
    from omnicrm.cli.shops import shop_summaries, shops_table
    from omnicrm.cli.status import print_last_errors, status_table
    from omnicrm.core.store import RunStatus

    engine = runtime.engine()
    results = [engine.sync(conn, trigger="demo") for conn in connections.values()]
    for result in results:
        console.print(
            f"{result.connection}: {result.status.value}, {result.read:,} read, "
            f"{result.written:,} written"
        )
    last = runtime.store.last_runs()
    console.print(status_table(runtime.config, last))
    print_last_errors(last, shop_zone(runtime.config))
    demo_shops = [
        s for s in shop_summaries(runtime.config, runtime.store) if s.id in dict(DEMO_SHOPS)
    ]
    console.print(shops_table(demo_shops))
    print_overlap(runtime)
    for shop_id, _ in DEMO_SHOPS:
        print_segment_counts(runtime, shop_id)
    first, second = (shop_id for shop_id, _ in DEMO_SHOPS)
    console.print(
        f"more: `omnicrm segments --shop {first}`, `omnicrm report ltv --shop {second}`, "
        f"`omnicrm customers find NAME --shop {first}`"
    )
    runtime.close()
    return all(r.status is RunStatus.COMPLETE for r in results)


def print_overlap(runtime: Runtime) -> None:
    """How many people the demo's shops share, each shop keeping its own profile of
    them: the point of separate customer bases."""
    from sqlalchemy import and_, func, select

    from omnicrm.crm.schema import profiles

    (first, _), (second, _) = DEMO_SHOPS
    a, b = profiles.alias("a"), profiles.alias("b")
    # Read through each shop's (shop, email) index; an aggregate only, never a person.
    both = (
        select(func.count(func.distinct(a.c.email)))
        .select_from(a.join(b, and_(b.c.shop == second, b.c.email == a.c.email)))
        .where(a.c.shop == first, a.c.email.is_not(None))
    )
    with runtime.store.engine.connect() as conn:
        shared = conn.execute(both).scalar_one()
    console.print(
        f"{shared:,} people (by email) buy from both {first} and {second}: each shop has "
        "its own profile of them, its own segments, points and reports, and neither shop "
        "sees the other's"
    )


def print_segment_counts(runtime: Runtime, shop: str) -> None:
    """The shop's segments with their latest count, two to a row."""
    from itertools import zip_longest

    from rich import box
    from rich.table import Table
    from sqlalchemy import func, select

    from omnicrm.crm.schema import segment_counts

    latest = (
        select(segment_counts.c.segment, func.max(segment_counts.c.counted_at).label("at"))
        .where(segment_counts.c.shop == shop)
        .group_by(segment_counts.c.segment)
        .subquery()
    )
    query = (
        select(segment_counts.c.segment, segment_counts.c.count)
        .join(
            latest,
            (segment_counts.c.segment == latest.c.segment)
            & (segment_counts.c.counted_at == latest.c.at),
        )
        .where(segment_counts.c.shop == shop)
        .order_by(segment_counts.c.segment)
    )
    with runtime.store.engine.connect() as conn:
        cells = [(escape(name), f"{count:,}") for name, count in conn.execute(query)]
    if not cells:
        return
    table = Table(
        "segment", "count", "segment", "count", box=box.SIMPLE, title=f"segments of {shop}"
    )
    half = (len(cells) + 1) // 2
    for left, right in zip_longest(cells[:half], cells[half:], fillvalue=("", "")):
        table.add_row(*left, *right)
    console.print(table)
