"""SIGKILL a process dispatching postal messages at random points, restart it from a
little before its last answer (as a sender whose last answers were lost would), and
read the run's files: every message once, in order, none lost."""

from __future__ import annotations

import csv
import io
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from omnicrm.plugins.postal.settings import PostalSettings
from tests.plugins.postal.conftest import Postal

MESSAGES = 600

_CHILD = """
import sys
from omnicrm import Consent, ConsentState, Medium, Message
from omnicrm.plugins.postal import plugin
from omnicrm.plugins.postal.settings import PostalSettings
from omnicrm.testing import load_host

host = load_host(plugin)
settings = PostalSettings(directory=sys.argv[1])
consents = [Consent(medium=Medium.POSTAL, state=ConsentState.OPTED_IN)]
address = {"postal_code": "150-0001", "prefecture": "東京都", "city": "渋谷区",
           "line1": "神宮前1-2-3", "line2": None}
for n in range(int(sys.argv[2]), int(sys.argv[3])):
    message = Message(
        id=f"tokyo-tea.c1.p{n}.postal", medium=Medium.POSTAL, customer_id=str(n), to="",
        body="", metadata={"shop": "tokyo-tea", "campaign": "winter", "variant": "A",
                           "family_name": "山田", "given_name": f"花子{n}",
                           "postal_address": address},
    )
    outcome = host.dispatch("postal", message, settings, consents=consents)
    print(n, outcome.provider_id, flush=True)
"""


def dispatching(directory: Path, start: int, stop: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(directory), str(start), str(stop)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow
def test_kills_at_random_points_neither_repeat_nor_lose_a_row(tmp_path: Path) -> None:
    directory = tmp_path / "dm"
    rng = random.Random(15)
    answered: dict[int, str] = {}
    start, kills = 1, 0
    while start < MESSAGES + 1:
        child = dispatching(directory, start, MESSAGES + 1)
        assert child.stdout is not None
        lines: list[str] = []
        if kills < 6:
            # Killed after a random number of answers, wherever it then is: between two
            # messages, or writing one's journal line.
            for _ in range(rng.randint(20, 150)):
                line = child.stdout.readline()
                if not line:
                    break
                lines.append(line)
            if child.poll() is None:
                child.send_signal(signal.SIGKILL)
                kills += 1
        out, err = child.communicate(timeout=120)
        assert child.returncode in (0, -signal.SIGKILL), err
        for line in [*lines, *out.splitlines()]:
            n, provider_id = line.split()
            # A message answered twice (sent again after a restart) keeps its label.
            assert answered.setdefault(int(n), provider_id) == provider_id
        last = max(answered, default=0)
        # Restart a few before the last answer: those answers were "lost".
        start = last + 1 if child.returncode == 0 else max(1, last - 3)
    assert kills >= 2, "the test must interrupt at least twice"
    Postal(PostalSettings(directory=directory)).finish()
    (recipients,) = [p for p in directory.glob("*.csv")]
    rows = list(csv.reader(io.StringIO(recipients.read_text(encoding="utf-8-sig"))))[1:]
    assert [r[8] for r in rows] == [f"tokyo-tea.c1.p{n}.postal" for n in range(1, MESSAGES + 1)]
    assert sorted(answered) == list(range(1, MESSAGES + 1))
    run = recipients.stem
    assert all(answered[n] == f"{run}#{n}" for n in answered)
