"""`omnicrm offers report`: the figures per variant with the difference from the control
(its sums in tests/engage/onsite/test_report.py), and its usage errors."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from click.testing import CliRunner

from omnicrm.cli import cli
from omnicrm.core.channels import DEFAULT_SHOP
from omnicrm.core.store import Store
from omnicrm.engage.onsite import visitors
from omnicrm.engage.onsite.visitors import Event

NOW = dt.datetime(2026, 12, 10, 3, 0, tzinfo=dt.UTC)
OFFER = """
[offers.second]
kind = "popup"
text = "10%OFF"
variants = [{ name = "A" }, { name = "B" }]
"""


def config(tmp_path: Path, offers: str = OFFER) -> Path:
    path = tmp_path / "omnicrm.toml"
    path.write_text(f'[store]\nurl = "sqlite:///{tmp_path / "s.db"}"\n{offers}', encoding="utf-8")
    return path


def test_the_report_shows_each_variant_against_the_control(tmp_path: Path) -> None:
    path = config(tmp_path)
    store = Store.open(f"sqlite:///{tmp_path / 's.db'}")
    with store.engine.begin() as conn:
        for i in range(40):
            visitor, variant = f"visitor-{i:014d}", "A" if i % 2 else "B"
            visitors.touch(conn, DEFAULT_SHOP, visitor, now=NOW, new_visit=True)
            seen = [Event("impression", "second", variant)]
            if i % 4 == 0:  # even visitors are B: half of them click
                seen.append(Event("click", "second", variant))
            visitors.record(conn, DEFAULT_SHOP, visitor, seen, now=NOW)
    store.close()
    done = CliRunner().invoke(cli, ["-c", str(path), "offers", "report"])
    assert done.exit_code == 0, done.output
    assert "second (conversions within 7 days)" in done.output
    rows = {
        cells[0]: cells
        for cells in (line.replace("│", " ").split() for line in done.output.splitlines())
        if cells and cells[0] in ("A", "B") and cells[1] != "vs"
    }
    assert rows["A"][1:5] == ["20", "20", "0", "0.0%"]
    assert rows["B"][1:5] == ["20", "20", "10", "50.0%"]
    compared = next(line for line in done.output.splitlines() if "B vs A" in line)
    assert "CTR +50.0pt [" in compared and "] *," in compared  # the interval leaves out 0


def test_an_unknown_offer_or_variant_exits_2_naming_them(tmp_path: Path) -> None:
    path = config(tmp_path)
    done = CliRunner().invoke(cli, ["-c", str(path), "offers", "report", "spring"])
    assert done.exit_code == 2
    assert "no offer 'spring' (offers: second)" in done.output
    done = CliRunner().invoke(cli, ["-c", str(path), "offers", "report", "--control", "Z"])
    assert done.exit_code == 2
    assert "no variant 'Z'" in done.output


def test_a_shop_without_offers_is_told_how_to_add_one(tmp_path: Path) -> None:
    done = CliRunner().invoke(cli, ["-c", str(config(tmp_path, "")), "offers", "report"])
    assert done.exit_code == 0, done.output
    assert "has no offers" in done.output
