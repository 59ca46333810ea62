"""The leak test: two client shops whose sources hold the same people, and nothing of
one ever shows in the other.

Shop A (tokyo-tea: an EC site and a POS) and shop B (osaka-sweets: an EC site) know the
same six people: the same emails, phones, member codes, names, readings, birth dates
and addresses. Only what is the shop's own differs, and carries its mark: record and
order ids, order names, products, tags, and amounts (B's orders are of 987,654 yen, A's
of a few thousand). Every command of the CLI that shows or changes customer data runs
with ``--shop tokyo-tea``; none may print a mark of B, an amount B's size, or one of
B's profile ids where it lists profiles, nor change a row of B's. Another shop's
profile or record named under ``--shop A`` is refused.

The commands are found by walking the click tree, so a command added later is either
covered here or listed, with the reason, as showing no customer data: else
:func:`test_every_command_is_covered_or_shows_no_customer_data` fails.
"""

from __future__ import annotations

import datetime as dt
import re
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result
from sqlalchemy import create_engine, func, insert, select, text
from sqlalchemy.engine import make_url

from omnicrm.cli import cli
from omnicrm.core.store import Store
from omnicrm.core.store.schema import customers, metadata
from omnicrm.crm.schema import identity_suggestions, points_entries, profiles
from omnicrm.engage import schema as engage_schema
from tests.conftest import PG_URL, install_plugin
from tests.support import twins_plugin

A, B = "tokyo-tea", "osaka-sweets"
MARK_A, MARK_POS, MARK_B = "AKA", "AKAPOS", "BLUE"
AMOUNT_B = 987_654  # each of B's orders: an amount no sum of A's reaches
LARGE = 500_000  # any amount at least this large in A's output is B's

CONFIG = """\
[store]
url = "{url}"

[shops.tokyo-tea]
name = "東京茶舗"

[shops.osaka-sweets]
name = "大阪スイーツ"

[messaging.dispatchers.email]
dispatcher = "filedrop"
settings = {{ path = "{drop}" }}

[connections.tea-ec]
channel = "twins"
shop = "tokyo-tea"
[connections.tea-ec.settings]
mark = "AKA"
amount = 1100

[connections.tea-pos]
channel = "twins"
shop = "tokyo-tea"
[connections.tea-pos.settings]
mark = "AKAPOS"
amount = 2200
channel = "pos"

[connections.sweets-ec]
channel = "twins"
shop = "osaka-sweets"
[connections.sweets-ec.settings]
mark = "BLUE"
amount = {amount_b}
"""


# -- discovering the commands --------------------------------------------------------------


def discover() -> dict[tuple[str, ...], click.Command]:
    """Every command a user can run, by its path: the leaves of the tree, and the groups
    that do something without a subcommand (`omnicrm segments` lists them)."""
    found: dict[tuple[str, ...], click.Command] = {}

    def walk(command: click.Command, path: tuple[str, ...]) -> None:
        if isinstance(command, click.Group):
            if path and command.invoke_without_command:
                found[path] = command
            ctx = click.Context(command)
            for name in command.list_commands(ctx):
                sub = command.get_command(ctx, name)
                if sub is not None and not sub.hidden:
                    walk(sub, (*path, name))
        else:
            found[path] = command

    walk(cli, ())
    return found


# Commands that show no customer data, each with the reason. A command that does show or
# change customer data belongs in COVERED instead.
NOT_CUSTOMER_DATA: dict[tuple[str, ...], str] = {
    ("connections",): "the configured connections and their shops: no customer's data",
    ("connect",): "authorises one connection (its token file) or lists which are: no "
    "customer's data (tests/cli/test_connect.py)",
    ("demo",): "runs its own sandboxes and store (tests/cli/test_first_hour.py)",
    ("import", "pos-csv"): "one connection's records, into that connection's own shop as a "
    "sync writes them (Store.shop_of; tests/cli/test_import_pos_csv.py)",
    ("import", "ec_cube-csv"): "one connection's records, into that connection's own shop "
    "as a sync writes them (Store.shop_of; tests/cli/test_import_ec_cube_csv.py)",
    ("init",): "writes an example config",
    ("plugins",): "the installed plugins",
    ("products",): "the shop's catalogue (--shop): products, prices and links, no person's "
    "data (tests/crm/test_products.py, tests/cli/test_products.py)",
    ("reconcile",): "one connection's stored ids against its platform's, deleting in that "
    "connection only; prints ids and counts, no customer's data (tests/cli/test_reconcile.py)",
    ("run",): "the scheduler: each connection syncs into its own shop (tests/core/store)",
    ("sync",): "one connection, whose records go to its own shop (Store.shop_of)",
    ("status",): "runs per connection: counts and redacted errors, no customer's data",
    ("shops",): "the agency's overview: each shop's counts, never a person's data",
    ("shops", "rename"): (
        "gives one whole shop a new id, refused when that id holds data: it never joins two"
        " shops (tests/core/store/test_shop_rename.py)"
    ),
    ("tui",): "interactive: its shop switcher is tested in tests/tui",
    ("campaigns",): "each campaign's name, state and counts: no person's data",
    ("campaigns", "report"): "a campaign's counts by outcome and variant: no person's data",
    ("offers", "report"): "an offer's counts and sums per variant of --shop's own events and "
    "orders: no person's data (tests/engage/onsite/test_report.py)",
    ("campaigns", "schedule"): "sets a campaign's time; its rows were planned in its shop",
    ("campaigns", "pause"): "a campaign's state only",
    ("campaigns", "resume"): "a campaign's state only",
    ("campaigns", "cancel"): "a campaign's state only",
    ("webhooks", "serve"): "receives webhooks; a redaction within one shop is tested below",
    ("webhooks", "work"): "applies queued webhook events, each for its connection's shop",
    ("webhooks", "list"): "event ids, topics and outcomes: no customer's data",
}


@dataclass
class World:
    """The two shops, synced and refreshed, and what the cases need of them."""

    config: Path
    url: str
    files: Path
    ids: dict[str, set[int]] = field(default_factory=dict)  # each shop's profile ids
    a_id: int = 0  # twin1's profile in A
    b_id: int = 0  # twin1's profile in B
    b_suggestion: int = 0  # a suggested pair of B's records

    def run(self, *args: str) -> Result:
        # The data dir beside the config: a send keeps the links' secret there.
        data = str(self.config.parent / "data")
        return CliRunner().invoke(
            cli,
            ["--config", str(self.config), *args],
            env={"COLUMNS": "200", "OMNICRM_DATA_DIR": data},
        )

    def csv(self, name: str, body: str) -> str:
        path = self.files / name
        path.write_text(body, encoding="utf-8")
        return str(path)


@dataclass(frozen=True)
class Step:
    """One invocation under ``--shop tokyo-tea``, and what it must do."""

    args: list[str]
    refused: bool = False  # another shop's profile or record: a non-zero exit
    shows: tuple[str, ...] = ()  # of A's: proves the command shows the data it should
    lists_profiles: bool = False  # rows lead with a profile id: none may be B's


Case = Callable[[World], list[Step]]

_NOW = "2026-11-20T10:00:00+09:00"
_LINE_A, _LINE_B = "U" + "a" * 32, "U" + "b" * 32


def _interactions_csv(w: World) -> str:
    return w.csv(
        "interactions.csv",
        f"interaction_id,kind,occurred_at,email,subject\nAKA-int-1,inquiry,{_NOW},"
        "twin2@example.jp,AKA-question\n",
    )


def _nps_csv(w: World) -> str:
    return w.csv(
        "nps.csv",
        f"response_id,score,responded_at,email,comment\nAKA-nps-1,9,{_NOW},"
        "twin2@example.jp,AKA-comment\n",
    )


def _campaign(w: World, name: str) -> Step:
    template = w.csv(f"{name}.txt", "Subject: {{ name }}へ\n\n{{ name }}、{{ points }}点\n")
    return Step(
        ["campaigns", "create", name, "--segment", "amount_spent > 0", "--template", template]
    )


def _points_csv(w: World, connection: str, customer: str, event: str) -> str:
    return w.csv(
        f"points-{event}.csv",
        "connection,customer_id,event_id,kind,points,occurred_at\n"
        f"{connection},{customer},{event},earn,5,{_NOW}\n",
    )


def _dsn(w: World) -> str:
    """A delivery report (RFC 3464) of a hard bounce for twin1, whom both shops hold."""
    from tests.engage.test_bounces import dsn

    path = w.files / "bounce.eml"
    path.write_bytes(dsn(None, twins_plugin.email(1), "5.1.1"))
    return str(path)


LISTED, LIFTED = "listed@example.jp", "lifted@example.jp"
_UNSUPPRESS = ["campaigns", "unsuppress", "--medium", "email", "--reason", "fixed"]


def _bounced(w: World, address: str) -> None:
    """``address`` on both shops' suppression lists as bounced, each entry's answer
    marked with its shop."""
    from tests.engage.conftest import bounce

    store = Store(w.url)
    try:
        for shop, mark in ((A, MARK_A), (B, MARK_B)):
            bounce(store, address, shop=shop, detail=f"{mark} 550 5.1.1")
    finally:
        store.close()


def _suggest_in_b(url: str) -> int:
    """A suggested pair of B's records (as a refresh of B writes one), for A to be
    refused deciding it."""
    store = Store(url)
    try:
        with store.engine.begin() as conn:
            return int(
                conn.execute(
                    insert(identity_suggestions)
                    .values(
                        shop=B,
                        a_connection="sweets-ec",
                        a_record="BLUE-cust-0",
                        b_connection="sweets-ec",
                        b_record="BLUE-cust-1",
                        conflict="birth_date",
                        strength=70,
                        evidence={"keys": {"email": "BLUE@example.jp"}, "detail": "BLUE"},
                        found_at=dt.datetime.now(dt.UTC),
                    )
                    .returning(identity_suggestions.c.id)
                ).scalar_one()
            )
    finally:
        store.close()


COVERED: dict[tuple[str, ...], Case] = {
    # Matched against shop A's messages only: B's list and outbox are never touched.
    ("campaigns", "bounces"): lambda w: [Step(["campaigns", "bounces", _dsn(w)])],
    ("campaigns", "create"): lambda w: [_campaign(w, "iso-create")],
    ("campaigns", "suppressions"): lambda w: [
        Step(["campaigns", "suppressions"], shows=(LISTED, MARK_A)),
        Step(["campaigns", "suppressions", "--json"], shows=(LISTED, MARK_A)),
    ],
    # Lifted in A only: B's entry of the same address is neither lifted nor found.
    ("campaigns", "unsuppress"): lambda w: [
        Step([*_UNSUPPRESS, LIFTED], shows=("bounced lifted",)),
        Step([*_UNSUPPRESS, LIFTED], refused=True),
    ],
    ("campaigns", "preview"): lambda w: [
        _campaign(w, "iso-preview"),
        Step(["campaigns", "preview", "iso-preview", "--profile", str(w.a_id)]),
        Step(["campaigns", "preview", "iso-preview", "--profile", str(w.b_id)], refused=True),
    ],
    ("campaigns", "send"): lambda w: [
        _campaign(w, "iso-send"),
        Step(["campaigns", "send", "iso-send"]),
    ],
    ("customers", "find"): lambda w: [
        Step(["customers", "find", query], lists_profiles=True, shows=(str(w.a_id),))
        for query in ("twin1@example.jp", twins_plugin.phone(1), "MEM00001", "サトウ ミサキ")
    ],
    ("customers", "show"): lambda w: [
        Step(["customers", "show", str(w.a_id)], shows=("AKA-cust-1", "AKAPOS-cust-1")),
        Step(["customers", "show", str(w.b_id)], refused=True),
        # By a source record: its profile; another shop's record is not found.
        Step(["customers", "show", "tea-ec:AKA-cust-1"], shows=("AKA-cust-1", "AKAPOS-cust-1")),
        Step(["customers", "show", "sweets-ec:BLUE-cust-1"], refused=True),
    ],
    ("customers", "explain"): lambda w: [
        Step(["customers", "explain", str(w.a_id)], shows=("AKA-cust-1",)),
        Step(["customers", "explain", str(w.b_id)], refused=True),
    ],
    ("customers", "merges"): lambda w: [Step(["customers", "merges"], shows=("AKA",))],
    ("customers", "link"): lambda w: [
        Step(["customers", "link", "tea-ec:AKA-cust-0", "sweets-ec:BLUE-cust-0"], refused=True),
        Step(["customers", "link", "tea-ec:AKA-cust-2", "tea-pos:AKAPOS-cust-2"]),
    ],
    ("customers", "suggestions"): lambda w: [
        Step(["customers", "suggestions"]),
        Step(["customers", "suggestions", "--json"]),
    ],
    ("customers", "suggestions", "link"): lambda w: [
        Step(["customers", "suggestions", "link", str(w.b_suggestion)], refused=True),
    ],
    ("customers", "suggestions", "separate"): lambda w: [
        Step(["customers", "suggestions", "separate", str(w.b_suggestion)], refused=True),
    ],
    ("customers", "suggestions", "split"): lambda w: [
        Step(["customers", "suggestions", "split", str(w.b_suggestion)], refused=True),
    ],
    ("customers", "unmerge"): lambda w: [
        Step(["customers", "unmerge", "sweets-ec", "BLUE-cust-0"], refused=True),
        Step(["customers", "unmerge", "tea-pos", "AKAPOS-cust-5"]),
    ],
    ("crm", "refresh"): lambda w: [
        Step(["crm", "refresh"]),
        Step(["crm", "refresh", "--full"]),
    ],
    ("segments",): lambda w: [Step(["segments"])],
    ("segments", "add"): lambda w: [
        Step(["segments", "add", "big-spenders", f"amount_spent >= {LARGE}"]),
    ],
    ("segments", "check"): lambda w: [
        Step(["segments", "check", f"amount_spent >= {LARGE}"]),
        Step(["segments", "check", "amount_spent > 0"]),
    ],
    ("segments", "show"): lambda w: [
        Step(["segments", "add", "buyers", "amount_spent > 0", "--replace"]),
        Step(["segments", "show", "buyers"], lists_profiles=True, shows=(str(w.a_id),)),
    ],
    ("segments", "remove"): lambda w: [
        Step(["segments", "add", "gone", "amount_spent > 0", "--replace"]),
        Step(["segments", "remove", "gone"]),
    ],
    ("interactions", "add"): lambda w: [
        Step(["interactions", "add", str(w.a_id), "--kind", "inquiry", "--subject", "AKA-s"]),
        Step(
            ["interactions", "add", str(w.b_id), "--kind", "inquiry", "--subject", "x"],
            refused=True,
        ),
    ],
    ("interactions", "list"): lambda w: [
        Step(["interactions", "add", str(w.a_id), "--kind", "praise", "--subject", "AKA-p"]),
        Step(["interactions", "list", str(w.a_id)], shows=("AKA-p",)),
        Step(["interactions", "list", str(w.b_id)], refused=True),
    ],
    ("interactions", "import"): lambda w: [
        Step(["interactions", "import", _interactions_csv(w), "--source", "desk"]),
    ],
    ("nps", "import"): lambda w: [Step(["nps", "import", _nps_csv(w), "--source", "survey"])],
    ("import", "line-links"): lambda w: [
        # The email both shops know: linked to A's customer only.
        Step(
            [
                "import",
                "line-links",
                w.csv("line-a.csv", f"line_user_id,email\n{_LINE_A},twin2@example.jp\n"),
            ]
        ),
        # B's profile named from A: no customer of A, nothing linked.
        Step(
            [
                "import",
                "line-links",
                w.csv("line-b.csv", f"line_user_id,profile_id\n{_LINE_B},{w.b_id}\n"),
            ],
            refused=True,
        ),
    ],
    ("nps", "summary"): lambda w: [Step(["nps", "summary"])],
    ("points", "adjust"): lambda w: [
        Step(["points", "adjust", str(w.a_id), "300", "--note", "AKA-adjust"]),
        Step(["points", "adjust", str(w.b_id), "300", "--note", "x"], refused=True),
    ],
    ("points", "redeem"): lambda w: [
        Step(["points", "adjust", str(w.a_id), "50", "--note", "AKA-gift"]),
        Step(["points", "redeem", str(w.a_id), "10", "--note", "AKA-use"]),
        Step(["points", "redeem", str(w.b_id), "10", "--note", "x"], refused=True),
    ],
    ("points", "balance"): lambda w: [
        Step(["points", "balance", str(w.a_id)]),
        Step(["points", "balance", str(w.b_id)], refused=True),
    ],
    ("points", "history"): lambda w: [
        Step(["points", "history", str(w.a_id)]),
        Step(["points", "history", str(w.b_id)], refused=True),
    ],
    ("points", "expire"): lambda w: [Step(["points", "expire"])],
    ("points", "reconcile"): lambda w: [Step(["points", "reconcile"])],
    ("points", "import"): lambda w: [
        Step(["points", "import", _points_csv(w, "tea-ec", "AKA-cust-1", "AKA-e1")]),
        # A POS file naming another shop's connection is refused as a whole.
        Step(
            ["points", "import", _points_csv(w, "sweets-ec", "BLUE-cust-1", "AKA-e2")],
            refused=True,
        ),
    ],
    **{
        ("report", name): (lambda w, name=name: [Step(["report", name])])
        for name in ("aov", "cohorts", "f2", "interval", "repeat", "retention", "nps")
    },
    ("recommend",): lambda w: [
        Step(["recommend", str(w.a_id)]),
        Step(["recommend", str(w.b_id)], refused=True),
        # The same people bought in A's EC site and its POS: bought together across both.
        Step(["recommend", "--product", f"{MARK_A}-sku"], shows=(f"{MARK_POS}-sku",)),
        Step(["recommend", "--product", f"{MARK_B}-sku"], refused=True),
        Step(["recommend", "--due"], lists_profiles=True),
        Step(["recommend", "--due", "--product", f"{MARK_B}-sku"], refused=True),
    ],
    ("report", "ltv"): lambda w: [Step(["report", "ltv"], lists_profiles=True)],
    ("report", "clv"): lambda w: [Step(["report", "clv", "--fit"], lists_profiles=True)],
}


def test_every_command_is_covered_or_shows_no_customer_data() -> None:
    commands = set(discover())
    unclassified = sorted(commands - set(COVERED) - set(NOT_CUSTOMER_DATA))
    assert not unclassified, (
        "commands neither covered by the shop isolation test nor listed as showing no "
        f"customer data: {[' '.join(p) for p in unclassified]}"
    )
    both = sorted(set(COVERED) & set(NOT_CUSTOMER_DATA))
    assert not both, both
    gone = sorted((set(COVERED) | set(NOT_CUSTOMER_DATA)) - commands)
    assert not gone, f"listed here but no longer commands: {gone}"
    assert all(reason.strip() for reason in NOT_CUSTOMER_DATA.values())


def test_every_customer_data_command_takes_shop() -> None:
    commands = discover()
    without = sorted(
        " ".join(path)
        for path in COVERED
        if not any(p.name == "shop" for p in commands[path].params)
    )
    assert not without, f"commands that show customer data without --shop: {without}"


# -- the two shops -------------------------------------------------------------------------


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    root = tmp_path_factory.mktemp(f"isolation-{request.param}")
    site = root / "site"
    install_plugin(site, "twins", "tests.support.twins_plugin")
    install_plugin(site, "filedrop", "tests.support.filedrop_plugin")
    sys.path.insert(0, str(site))
    admin = None
    if request.param == "sqlite":
        url = f"sqlite:///{root / 'omnicrm.db'}"
    else:
        admin_url = make_url(PG_URL)
        try:
            admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
            name = f"omnicrm_iso_{uuid.uuid4().hex[:12]}"
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
        except Exception as exc:
            sys.path.remove(str(site))
            pytest.skip(f"PostgreSQL not reachable at {admin_url.render_as_string()}: {exc}")
        url = admin_url.set(database=name).render_as_string(hide_password=False)
    config = root / "omnicrm.toml"
    config.write_text(
        CONFIG.format(url=url, amount_b=AMOUNT_B, drop=root / "drop.jsonl"), encoding="utf-8"
    )
    files = root / "files"
    files.mkdir()
    w = World(config=config, url=url, files=files)
    try:
        for connection in ("tea-ec", "tea-pos", "sweets-ec"):
            done = w.run("sync", connection)
            assert done.exit_code == 0, done.output
        for shop in (A, B):
            done = w.run("crm", "refresh", "--shop", shop)
            assert done.exit_code == 0, done.output
        w.b_suggestion = _suggest_in_b(url)
        for address in (LISTED, LIFTED):
            _bounced(w, address)
        store = Store(url)
        try:
            with store.engine.connect() as conn:
                for shop in (A, B):
                    w.ids[shop] = set(
                        conn.execute(select(profiles.c.id).where(profiles.c.shop == shop))
                        .scalars()
                        .all()
                    )
                    found = conn.execute(
                        select(profiles.c.id).where(
                            profiles.c.shop == shop, profiles.c.email == twins_plugin.email(1)
                        )
                    ).scalar_one()
                    if shop == A:
                        w.a_id = found
                    else:
                        w.b_id = found
        finally:
            store.close()
        yield w
    finally:
        sys.path.remove(str(site))
        if admin is not None:
            with admin.connect() as conn:
                name = make_url(url).database
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()


def fingerprint(url: str, shop: str) -> dict[str, object]:
    """What the store holds of ``shop``: every shop-keyed table's rows, and the people."""
    assert engage_schema.outbox.metadata is metadata  # its tables counted from the start
    store = Store(url)
    try:
        with store.engine.connect() as conn:
            found: dict[str, object] = {}
            for table in metadata.sorted_tables:
                if "shop" in table.c:
                    found[table.name] = conn.execute(
                        select(func.count()).select_from(table).where(table.c.shop == shop)
                    ).scalar_one()
            found["people"] = conn.execute(
                select(
                    profiles.c.id,
                    profiles.c.email,
                    profiles.c.phone,
                    profiles.c.member_code,
                    profiles.c.number_of_orders,
                    profiles.c.amount_spent,
                )
                .where(profiles.c.shop == shop)
                .order_by(profiles.c.id)
            ).all()
            found["points"] = conn.execute(
                select(func.coalesce(func.sum(points_entries.c.points), 0)).where(
                    points_entries.c.shop == shop
                )
            ).scalar_one()
            found["customers"] = conn.execute(
                select(customers.c.id, customers.c.email)
                .where(customers.c.shop == shop)
                .order_by(customers.c.id)
            ).all()
        return found
    finally:
        store.close()


# An amount: comma-grouped, or six digits and more standing alone (not in a hex id, a
# phone number or a date).
_AMOUNT = re.compile(
    r"(?<![\w.,+])\d{1,3}(?:,\d{3})+(?:\.\d+)?(?![\w,])"
    r"|(?<![\w.,+:-])\d{6,}(?:\.\d+)?(?![\w:-])"
)
# A table row that leads with a profile id (a summary line's "7 customers" does not).
_LEADING_ID = re.compile(r"^\s*(\d+)\s{2,}", re.MULTILINE)


def leaks(output: str, w: World, step: Step) -> list[str]:
    """What of shop B ``output`` shows, beyond what the operator typed (a refusal may
    quote the record it was given)."""
    for arg in sorted(step.args, key=len, reverse=True):
        output = output.replace(arg, "")
    found = [mark for mark in (MARK_B, "987,654", "987654") if mark in output]
    for number in _AMOUNT.findall(output):
        value = float(number.replace(",", ""))
        if value >= LARGE and not re.fullmatch(r"\d{8}", number):  # a YYYYMMDD date
            found.append(f"an amount of B's size: {number}")
    if step.lists_profiles:
        listed = {int(n) for n in _LEADING_ID.findall(output)}
        found += [f"B's profile {n}" for n in sorted(listed & w.ids[B])]
    return found


def test_profiles_number_the_sum_of_both_shops(world: World) -> None:
    # Each shop resolves its own people: six in A (its EC and POS records merged), six
    # in B, though all twelve records share their emails, phones and member codes.
    assert len(world.ids[A]) == 6 and len(world.ids[B]) == 6
    store = Store(world.url)
    try:
        with store.engine.connect() as conn:
            total = conn.execute(select(func.count()).select_from(profiles)).scalar_one()
    finally:
        store.close()
    assert total == len(world.ids[A]) + len(world.ids[B])
    shown = world.run("shops")
    assert shown.exit_code == 0, shown.output
    rows = {line.split()[0]: line for line in shown.output.splitlines() if line.strip()}
    assert re.search(r"\s6\s", rows[A]) and re.search(r"\s6\s", rows[B]), shown.output


@pytest.mark.parametrize("path", list(COVERED), ids=" ".join)
def test_a_command_run_in_shop_a_shows_and_changes_nothing_of_shop_b(
    world: World, path: tuple[str, ...]
) -> None:
    before = fingerprint(world.url, B)
    for step in COVERED[path](world):
        done = world.run(*step.args, "--shop", A)
        output = done.output
        shown = f"omnicrm {' '.join(step.args)} --shop {A}: exit {done.exit_code}\n{output}"
        assert "No such option: --shop" not in output, f"{' '.join(path)} takes no --shop"
        if step.refused:
            assert done.exit_code != 0, shown
            assert done.exit_code in (1, 2), shown
        else:
            assert done.exit_code == 0, shown
        assert "Traceback" not in output, shown
        assert not leaks(output, world, step), (leaks(output, world, step), shown)
        for mark in step.shows:
            assert mark in output, shown
    assert fingerprint(world.url, B) == before, f"{' '.join(path)} changed shop B's data"


def test_a_redaction_in_shop_a_leaves_shop_b_intact(world: World) -> None:
    before = fingerprint(world.url, B)
    person = twins_plugin.email(3)
    store = Store.open(world.url)
    try:
        store.redact_customer("tea-ec", "AKA-cust-3")
        store.redact_customer("tea-pos", "AKAPOS-cust-3")
    finally:
        store.close()
    done = world.run("crm", "refresh", "--shop", A)
    assert done.exit_code == 0, done.output
    gone = world.run("customers", "find", person, "--shop", A)
    assert gone.exit_code == 0 and "twin3" not in gone.output.replace(person, ""), gone.output
    store = Store(world.url)
    try:
        with store.engine.connect() as conn:
            in_a = conn.execute(
                select(func.count())
                .select_from(profiles)
                .where(profiles.c.shop == A, profiles.c.email == person)
            ).scalar_one()
    finally:
        store.close()
    assert in_a == 0
    # B's person is untouched: the same email, their records, profile and orders.
    assert fingerprint(world.url, B) == before
    kept = world.run("customers", "find", person, "--shop", B)
    assert kept.exit_code == 0 and person in kept.output, kept.output
