"""A new user's first hour: `omnicrm demo`, then the README's commands from anywhere.

The demo runs once in one directory, with HOME and the XDG dirs in a temporary folder
(no OMNICRM_DATA_DIR, no config); every command the README and the demo's closing hint
name then runs from another directory, piped, as a user would type it.
"""

from __future__ import annotations

import email
import json
import os
import re
import shlex
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from rich.cells import cell_len

from omnicrm.plugins.line.sandbox import demo_user

ROOT = Path(__file__).resolve().parents[2]
# Commands that need a shop's own config, serve until stopped, or take over the terminal.
NOT_FOR_THE_DEMO = (
    "omnicrm demo",
    "omnicrm init",
    "omnicrm sync",
    "omnicrm run",
    "omnicrm tui",
    "omnicrm webhooks",
    "omnicrm shops rename default",  # names a store of one's own, kept before [shops]
    "omnicrm import pos-csv",  # needs a pos_csv connection and a file of one's own
    "omnicrm import ec_cube-csv",  # needs an ec_cube_csv connection and files of one's own
    "omnicrm import line-links",  # needs a file of one's own
    "omnicrm connect",  # authorises a shop's own EC-CUBE connection in its browser
    "omnicrm campaigns create",  # needs template files of one's own
    "omnicrm campaigns send",  # needs the running demo: the last test sends so
    "omnicrm campaigns unsuppress",  # lifts a bounce: a send to the catcher makes one
    "omnicrm recommend --write-back",  # writes to the shop's Shopify: the running demo's sandbox
)
# Runs many commands in one interpreter, each as `omnicrm` would (its own stdout and
# stderr, its exit code): a process per command would take minutes on a loaded machine.
_DRIVER = """
import json, shlex, sys, traceback
from click.testing import CliRunner
from omnicrm.cli import cli
out = []
for command in json.loads(sys.argv[1]):
    r = CliRunner().invoke(cli, shlex.split(command)[1:])
    # CliRunner turns an uncaught exception into exit code 1: a crash, not a refusal.
    crashed = r.exc_info is not None and not isinstance(r.exc_info[1], SystemExit)
    crash = "".join(traceback.format_exception(*r.exc_info)) if crashed else ""
    out.append([r.exit_code, r.stdout, r.stderr, crash])
print(json.dumps(out))
"""


@dataclass(frozen=True)
class Ran:
    command: str
    returncode: int
    stdout: str
    stderr: str


@dataclass(frozen=True)
class Demo:
    home: Path
    env: dict[str, str]
    stdout: str
    stderr: str

    def run_all(self, commands: list[str], *, cwd: Path | None = None) -> list[Ran]:
        """Each of ``commands`` ('omnicrm ...'), from a directory with no omnicrm.toml."""
        done = subprocess.run(
            [sys.executable, "-c", _DRIVER, json.dumps(commands)],
            cwd=cwd or self.home / "elsewhere",
            env=self.env,
            capture_output=True,
            text=True,
            timeout=280,
        )
        assert done.returncode == 0, done.stderr
        results = json.loads(done.stdout)
        for command, (_, _, _, crash) in zip(commands, results, strict=True):
            assert not crash, f"{command}: {crash}"
        return [Ran(c, *r[:3]) for c, r in zip(commands, results, strict=True)]

    def run(self, command: str, *, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        """``command`` as typed ('omnicrm ...'), from a directory with no omnicrm.toml."""
        args = shlex.split(command)
        assert args[0] == "omnicrm"
        return subprocess.run(
            [sys.executable, "-m", "omnicrm.cli", *args[1:]],
            cwd=cwd or self.home / "elsewhere",
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
        )


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    home = tmp_path_factory.mktemp("first-hour")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMNICRM_", "XDG_"))}
    env |= {
        "HOME": str(home),
        "XDG_DATA_HOME": str(home / "xdg-data"),
        "XDG_CONFIG_HOME": str(home / "xdg-config"),
        "XDG_CACHE_HOME": str(home / "xdg-cache"),
        "SHOPIFY_SANDBOX_CUSTOMERS": "40",
        "MINISHOP_CUSTOMERS": "40",
        "COLUMNS": "80",
    }
    for folder in ("demo-here", "elsewhere"):
        (home / folder).mkdir()
    done = Demo(home, env, "", "").run("omnicrm demo --once", cwd=home / "demo-here")
    assert done.returncode == 0, done.stderr
    return Demo(home, env, done.stdout, done.stderr)


def readme_commands() -> list[str]:
    """Every `omnicrm ...` command of the README's code blocks and inline code."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    found = [
        m.group(1).split("#")[0].strip()
        for m in re.finditer(r"^ {4}(omnicrm [^\n]*)$", readme, flags=re.MULTILINE)
    ]
    found += re.findall(r"`(omnicrm [^`]*)`", readme)
    return list(dict.fromkeys(found))


def hint_commands(stdout: str) -> list[str]:
    """The commands the demo's closing hint names (NAME filled in with a demo name)."""
    hint = next(line for line in stdout.splitlines() if line.startswith("more:"))
    return [c.replace("NAME", "やまだ") for c in re.findall(r"`(omnicrm [^`]*)`", hint)]


def test_the_demo_says_where_its_config_is(demo: Demo) -> None:
    config = demo.home / "xdg-data" / "omnicrm" / "omnicrm.toml"
    assert config.is_file()
    assert f"config: {config}" in " ".join(demo.stdout.split())
    assert not (demo.home / "demo-here" / "omnicrm.toml").exists()


def test_every_readme_and_hint_command_works_from_another_directory(demo: Demo) -> None:
    commands = [
        c
        for c in readme_commands() + hint_commands(demo.stdout)
        if not c.startswith(NOT_FOR_THE_DEMO)
    ]
    assert {
        "omnicrm segments --shop tokyo-tea",
        "omnicrm points balance 42 --shop tokyo-tea",
        "omnicrm status",
        "omnicrm shops",
    } <= set(commands)
    config = demo.home / "xdg-data" / "omnicrm" / "omnicrm.toml"
    for done in demo.run_all(commands):
        command = done.command
        assert "Traceback" not in done.stderr, command
        assert "file not found" not in done.stderr, command
        if command == "omnicrm customers unmerge pos P-17 --shop tokyo-tea":
            # The demo has no POS connection: the README's example record is unknown.
            assert done.returncode == 2 and "pos" in done.stderr, done.stderr
            continue
        assert done.returncode == 0, f"{command}: {done.stderr}"
        if command not in ("omnicrm plugins",):  # plugins never reads a config
            assert f"config: {config}" in " ".join(done.stderr.split()), command


def test_a_config_here_or_given_wins_over_the_demos(demo: Demo) -> None:
    here = demo.home / "with-config"
    here.mkdir(exist_ok=True)
    store = here / "own.db"
    (here / "omnicrm.toml").write_text(f'[store]\nurl = "sqlite:///{store}"\n', encoding="utf-8")
    done = demo.run("omnicrm segments", cwd=here)  # one shop here: no --shop needed
    assert done.returncode == 0, done.stderr
    assert "config:" not in done.stderr and store.exists()


# Every command that prints a table, on the demo's data (its first shop: the demo runs two).
TABLE_COMMANDS = (
    "omnicrm plugins",
    "omnicrm status",
    "omnicrm shops",
    "omnicrm segments --shop tokyo-tea",
    "omnicrm segments --live --shop tokyo-tea",
    "omnicrm segments show rfm:champions --shop tokyo-tea",
    "omnicrm customers find 子 --shop tokyo-tea",
    "omnicrm customers show 42 --shop tokyo-tea",
    "omnicrm customers explain 42 --shop tokyo-tea",
    "omnicrm points balance 42 --shop tokyo-tea",
    "omnicrm points history 42 --shop tokyo-tea",
    "omnicrm report ltv --shop tokyo-tea",
    "omnicrm report cohorts --shop tokyo-tea",
    "omnicrm report repeat --shop tokyo-tea",
    "omnicrm report f2 --shop tokyo-tea",
    "omnicrm report retention --shop tokyo-tea",
    "omnicrm report aov --shop tokyo-tea",
    "omnicrm report interval --shop tokyo-tea",
    "omnicrm report clv --fit --shop tokyo-tea",
)


# The demo's 80 customers' histories change with the clock (the sandbox's orders run up
# to now); on some days the CLV models cannot be fitted to so few, and the report says so
# in words instead of a table.
_NO_FIT = "the fitted CLV model is degenerate"


def assert_fits(command: str, returncode: int, stdout: str, stderr: str) -> None:
    assert returncode == 0, f"{command}: {stderr}"
    lines = stdout.splitlines()
    has_rule = any(set(line.strip()) <= set("─━ ") and line.strip() for line in lines)
    assert has_rule or (command.startswith("omnicrm report clv") and _NO_FIT in stdout), command
    too_long = [line for line in lines if cell_len(line) > 80]
    assert not too_long, f"{command}: {too_long[0]!r}"
    assert "…" not in stdout, f"{command} cut a cell:\n{stdout}"


def test_tables_fit_80_columns_without_cutting_cells(demo: Demo) -> None:
    for done in demo.run_all(list(TABLE_COMMANDS)):
        assert_fits(done.command, done.returncode, done.stdout, done.stderr)


@pytest.mark.parametrize(
    "command", ["omnicrm status", "omnicrm shops", "omnicrm report retention --shop tokyo-tea"]
)
def test_tables_piped_without_columns_fit_80(demo: Demo, command: str) -> None:
    env = {k: v for k, v in demo.env.items() if k != "COLUMNS"}
    done = subprocess.run(
        [sys.executable, "-m", "omnicrm.cli", *shlex.split(command)[1:]],
        cwd=demo.home / "elsewhere",
        env=env,
        capture_output=True,
        text=True,
        timeout=200,
    )
    assert_fits(command, done.returncode, done.stdout, done.stderr)


def test_the_demo_logs_each_syncs_start_and_end_on_one_line(demo: Demo) -> None:
    lines = demo.stderr.splitlines()
    for connection in ("tokyo-tea-shopify", "tokyo-tea-minishop", "osaka-sweets-shopify"):
        started = [line for line in lines if f"{connection}: run " in line and "started" in line]
        ended = [line for line in lines if f"{connection}: run " in line and "complete in" in line]
        assert len(started) == 1 and len(ended) == 1, demo.stderr
        assert re.search(
            r"complete in [\d.]+s: [\d,]+ read, [\d,]+ written, [\d.]+s waited on", ended[0]
        )
        assert "0 error(s)" in ended[0]
    # Library chatter stays at debug.
    for chatter in ("Context impl", "Running upgrade", "alembic", "apscheduler"):
        assert chatter not in demo.stderr


def test_init_after_the_demo_writes_here_not_over_the_demos_config(demo: Demo) -> None:
    here = demo.home / "new-shop"
    here.mkdir(exist_ok=True)
    done = demo.run("omnicrm init", cwd=here)
    assert done.returncode == 0, done.stderr
    assert (here / "omnicrm.toml").is_file()
    checked = demo.run("omnicrm connections", cwd=here)
    assert checked.returncode == 0 and "config:" not in checked.stderr, checked.stderr


def test_the_demo_runs_two_client_shops_whose_customers_overlap_apart(demo: Demo) -> None:
    out = " ".join(demo.stdout.split())
    for connection in ("tokyo-tea-shopify", "osaka-sweets-shopify"):
        assert f"{connection}: complete" in out
    shared = re.search(
        r"([\d,]+) people \(by email\) buy from both tokyo-tea and osaka-sweets", out
    )
    assert shared and int(shared.group(1).replace(",", "")) > 0, out
    assert "segments of tokyo-tea" in out and "segments of osaka-sweets" in out
    # Each shop's customer base is its own: the profiles add up to both shops' people.
    done = demo.run("omnicrm shops")
    assert done.returncode == 0, done.stderr
    profiles = dict(
        re.findall(r"^ (tokyo-tea|osaka-sweets) .*?\s([\d,]+)\s{2,}", done.stdout, re.M)
    )
    assert set(profiles) == {"tokyo-tea", "osaka-sweets"}, done.stdout
    assert all(int(count.replace(",", "")) > 0 for count in profiles.values()), done.stdout
    # Without --shop, a customer command names the shops and exits 2.
    ambiguous = demo.run("omnicrm segments")
    assert ambiguous.returncode == 2 and "osaka-sweets, tokyo-tea" in ambiguous.stderr


def test_the_demo_leaves_a_campaign_per_shop_ready_to_send(demo: Demo) -> None:
    out = " ".join(demo.stdout.split())
    maildir = demo.home / "xdg-data" / "omnicrm" / "demo-messages" / "tokyo-tea-email"
    assert f"email of shop tokyo-tea goes to the Email (SMTP) sandbox, kept in {maildir}" in out
    assert "campaigns: tokyo-tea, osaka-sweets each have second-purchase ready" in out
    assert "`omnicrm campaigns send second-purchase --shop tokyo-tea`" in out
    config = (demo.home / "xdg-data" / "omnicrm" / "omnicrm.toml").read_text(encoding="utf-8")
    for shop, sender in (("tokyo-tea", "東京茶舗"), ("osaka-sweets", "大阪スイーツ")):
        assert f"[shops.{shop}.messaging.dispatchers.email]" in config
        assert f'sender_name = "{sender}"' in config
        assert f"[shops.{shop}.messaging.cart_recovery]" in config
        listed = demo.run(f"omnicrm campaigns --shop {shop}")
        assert listed.returncode == 0, listed.stderr
        assert listed.stdout.split() == [
            "second-purchase", "email", "draft", "segment:", "lifecycle:second-purchase-candidate",
            "line-points", "line", "draft", "segment:", "number_of_orders", ">=", "1",
        ]  # fmt: skip
    assert "needs the demo running" in config
    assert "LINE: tokyo-tea, osaka-sweets each have line-points ready" in out
    assert "cart recovery: in tokyo-tea, osaka-sweets, a checkout left 1h ago" in out


def test_the_demos_line_secrets_are_in_owner_only_files_never_shown(demo: Demo) -> None:
    """The LINE emulator's token and channel secret: named in the config as files only
    their owner reads, never written there nor printed; later commands read them
    without a warning."""
    data = demo.home / "xdg-data" / "omnicrm"
    config = (data / "omnicrm.toml").read_text(encoding="utf-8")
    for shop in ("tokyo-tea", "osaka-sweets"):
        for key in ("channel_access_token", "channel_secret"):
            path = data / "demo-secrets" / f"{shop}-line-{key}"
            assert f'{key} = {{ file = "{path}" }}' in config
            assert path.stat().st_mode & 0o777 == 0o600
            secret = path.read_text(encoding="utf-8").strip()
            assert len(secret) >= 16
            assert secret not in config and secret not in demo.stdout + demo.stderr
    listed = demo.run("omnicrm campaigns --shop tokyo-tea")
    assert listed.returncode == 0 and "warning" not in listed.stderr, listed.stderr


def _mails(maildir: Path) -> list[EmailMessage]:
    return [
        email.message_from_bytes(path.read_bytes(), policy=policy.default)  # type: ignore[misc]
        for path in sorted((maildir / "new").iterdir())
    ]


def test_a_campaign_sent_to_the_running_demo_arrives_in_its_maildir(demo: Demo) -> None:
    """The demo restarted (its campaigns kept, not made twice), then the README's send
    while it runs: every mail parses, goes to an opted-in customer, and is reported."""
    connections = re.findall(r"^(\S+): complete, ", demo.stdout, re.M)
    assert connections, demo.stdout
    proc = subprocess.Popen(
        [sys.executable, "-m", "omnicrm.cli", "demo", "--no-tui", "--every", "1h"],
        cwd=demo.home / "demo-here",
        env=demo.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    err: list[str] = []
    reader = threading.Thread(target=lambda: err.extend(iter(proc.stderr.readline, "")))  # type: ignore[union-attr]
    reader.start()
    try:
        deadline = time.monotonic() + 240
        while not all(
            any(f"{c}: run " in line and "complete in" in line for line in list(err))
            for c in connections
        ):
            assert proc.poll() is None, "".join(err)
            assert time.monotonic() < deadline, "".join(err)
            time.sleep(0.5)
        sent = demo.run("omnicrm campaigns send second-purchase --shop tokyo-tea")
        assert sent.returncode == 0, sent.stderr
        count = int(re.search(r"sent ([\d,]+),", sent.stdout).group(1).replace(",", ""))  # type: ignore[union-attr]
        assert count > 0, sent.stdout
        arrived_mail = _mails(
            demo.home / "xdg-data" / "omnicrm" / "demo-messages" / "tokyo-tea-email"
        )
        report = demo.run("omnicrm campaigns report second-purchase --shop tokyo-tea")
        line = demo.run("omnicrm campaigns send line-points --shop tokyo-tea")
        listed = demo.run("omnicrm campaigns --shop tokyo-tea")
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
        reader.join()
    assert "send it while the demo runs" in out, out
    # The scheduler may have sent cart recovery messages meanwhile: each names its cart.
    recovery = [m for m in arrived_mail if "お買い物の途中です" in m["Subject"]]
    mails = [m for m in arrived_mail if m not in recovery]
    for mail in recovery:
        text = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        assert "/recover" in text and "・" in text and "点" in text, text
    assert len(mails) == count
    with sqlite3.connect(demo.home / "xdg-data" / "omnicrm" / "omnicrm.db") as db:
        opted_in = {
            address
            for (address,) in db.execute(
                "SELECT email FROM profiles WHERE shop = 'tokyo-tea' AND consent_email = 'opted_in'"
            )
        }
    for mail in mails:
        assert mail["From"].addresses[0].display_name == "東京茶舗"
        assert mail["To"].addresses[0].addr_spec in opted_in
        assert "様" in mail["Subject"] and mail["List-Unsubscribe-Post"]
        body = mail.get_body(("plain",))
        assert body is not None
        text = body.get_content()
        assert "様" in text and "ポイント" in text and "東京都千代田区" in text
    assert re.search(rf"sent\s+{count:,}\b", report.stdout), report.stdout
    # The restart kept the campaigns the first run made: one of each, and now done.
    assert listed.stdout.split()[:3] == ["second-purchase", "email", "done"], listed.stdout
    kinds = [row.split()[0] for row in listed.stdout.splitlines()]
    assert kinds[:2] == ["second-purchase", "line-points"], listed.stdout
    assert all(k.startswith("cart-recovery-") for k in kinds[2:]), listed.stdout
    assert line.returncode == 0, line.stderr
    pushed = int(re.search(r"sent ([\d,]+),", line.stdout).group(1).replace(",", ""))  # type: ignore[union-attr]
    assert pushed > 0, line.stdout
    # Each LINE message arrived in the emulator, to a friend who opted in; the linked
    # friends who did not opt in got nothing (a link is no consent).
    kept = demo.home / "xdg-data" / "omnicrm" / "demo-messages" / "tokyo-tea-line"
    arrived = [json.loads(x) for x in (kept / "delivered.jsonl").read_text("utf-8").splitlines()]
    assert len(arrived) == pushed
    opted_in = {demo_user(0, n) for n in range(15)}
    assert all(m["to"][0] in opted_in for m in arrived), arrived
    for message in arrived:
        (text,) = message["messages"]
        assert "様" in text["text"] and "東京茶舗" in text["text"] and "ポイント" in text["text"]
