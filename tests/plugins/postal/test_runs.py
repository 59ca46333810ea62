"""A campaign run's files: the recipients CSV, the labels PDF, the unaddressable list,
each row once whatever restarts, and no earlier run's file ever overwritten."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from pypdf import PdfReader

from omnicrm import DeliveryStatus
from omnicrm.errors import DataError
from omnicrm.plugins.postal import plugin, runs
from omnicrm.plugins.postal.settings import PostalSettings
from tests.plugins.postal.conftest import ADDRESS, Postal, message


def only(directory: Path, pattern: str) -> Path:
    (path,) = sorted(directory.glob(pattern))
    return path


def read_csv(path: Path, encoding: str = "utf-8-sig") -> list[list[str]]:
    return list(csv.reader(io.StringIO(path.read_bytes().decode(encoding), newline="")))


def pdf_text(path: Path) -> list[str]:
    return [page.extract_text() for page in PdfReader(path).pages]


def test_a_run_makes_the_recipients_csv_and_the_labels(postal: Postal, directory: Path) -> None:
    outcomes = postal.send(message(1), message(2), message(3, family_name="=HYPERLINK(1)"))
    assert [o.status for o in outcomes] == [DeliveryStatus.SENT] * 3
    run = outcomes[0].provider_id.split("#")[0]  # type: ignore[union-attr]
    assert run.startswith("tokyo-tea_winter_")
    assert [o.provider_id for o in outcomes] == [f"{run}#{n}" for n in (1, 2, 3)]
    assert not list(directory.glob("*.csv")), "the files are built when the run finishes"
    postal.finish()

    recipients = directory / f"{run}.csv"
    assert recipients.read_bytes().startswith(b"\xef\xbb\xbf")  # UTF-8 with a BOM
    rows = read_csv(recipients)
    assert rows[0] == [
        "郵便番号",
        "都道府県",
        "市区町村",
        "番地",
        "建物名",
        "宛名",
        "顧客ID",
        "パターン",
        "メッセージID",
    ]
    assert rows[1] == [
        "150-0001",
        "東京都",
        "渋谷区",
        "神宮前1-2-3",
        "青山ハイツ101",
        "山田 花子1 様",
        "1",
        "B",
        "tokyo-tea.c1.p1.postal",
    ]
    assert len(rows) == 4
    assert rows[3][5] == "'=HYPERLINK(1) 花子3 様"  # through CsvWriter: never a formula

    labels = directory / f"{run}-labels.pdf"
    (page,) = pdf_text(labels)
    for text in (
        "〒150-0001",
        "東京都渋谷区神宮前1-2-3",
        "青山ハイツ101",
        "山田 花子1 様",
        "山田 花子2 様",
    ):
        assert text in page
    # The Japanese CID font is the one drawing it (no font file, nothing downloaded).
    fonts = PdfReader(labels).pages[0]["/Resources"]["/Font"]
    names = {str(font.get_object()["/BaseFont"]) for font in fonts.values()}
    assert any(name.startswith("/HeiseiMin-W3") for name in names), names
    assert not (directory / f"{run}-unaddressable.csv").exists()


def test_labels_fill_sheets_of_the_configured_layout(directory: Path) -> None:
    postal = Postal(PostalSettings(directory=directory))
    postal.send(*[message(n) for n in range(1, 14)])
    postal.finish()
    pages = pdf_text(only(directory, "*-labels.pdf"))
    assert len(pages) == 2  # A4 12-up: 12 and 1
    assert "山田 花子12 様" in pages[0] and "山田 花子13 様" in pages[1]

    gothic = Postal(
        PostalSettings(
            directory=directory,
            labels={
                "columns": 3,
                "rows": 8,
                "label_width_mm": 70,
                "label_height_mm": 33.9,
                "top_mm": 13,
                "left_mm": 0,
                "font": "HeiseiKakuGo-W5",
            },
            columns=("name", "postal_code", "address"),
            headers={"name": "お名前"},
        )
    )
    gothic.send(*[message(n, campaign="spring") for n in range(1, 26)])
    gothic.finish("spring")
    pdf = only(directory, "tokyo-tea_spring_*-labels.pdf")
    assert [len(p) > 0 for p in pdf_text(pdf)] == [True, True]  # 24 + 1
    rows = read_csv(only(directory, "tokyo-tea_spring_*[0-9].csv"))
    assert rows[0] == ["お名前", "郵便番号", "住所"]
    assert rows[1] == ["山田 花子1 様", "150-0001", "東京都渋谷区神宮前1-2-3"]


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        (
            {**ADDRESS, "postal_code": "150-000"},
            "the postal code has 6 digits, not 7 (NNN-NNNN)",
        ),
        ({**ADDRESS, "postal_code": None}, "no postal code"),
        (
            {**ADDRESS, "postal_code": "渋谷"},
            "the postal code has characters other than digits (NNN-NNNN)",
        ),
    ],
)
def test_an_address_without_a_valid_postal_code_is_rejected_and_listed(
    postal: Postal, directory: Path, address: dict[str, str | None], reason: str
) -> None:
    good, bad = postal.send(message(1), message(2, postal_address=address))
    assert good.status is DeliveryStatus.SENT
    assert bad.status is DeliveryStatus.REJECTED
    run = good.provider_id.split("#")[0]  # type: ignore[union-attr]
    assert bad.error == (
        f"message tokyo-tea.c1.p2.postal: {reason}; listed in {run}-unaddressable.csv"
    )
    postal.finish()
    assert [r[8] for r in read_csv(directory / f"{run}.csv")[1:]] == ["tokyo-tea.c1.p1.postal"]
    listed = read_csv(directory / f"{run}-unaddressable.csv")
    assert listed[0] == ["メッセージID", "顧客ID", "理由", "郵便番号", "住所", "宛名"]
    assert listed[1][:3] == ["tokyo-tea.c1.p2.postal", "2", reason]
    assert listed[1][4:] == ["東京都 渋谷区 神宮前1-2-3 青山ハイツ101", "山田 花子2"]
    assert len(listed) == 2
    assert len(PdfReader(directory / f"{run}-labels.pdf").pages) == 1


def test_cp932_writes_shift_jis_and_refuses_a_name_it_cannot_hold(directory: Path) -> None:
    postal = Postal(PostalSettings(directory=directory, encoding="cp932"))
    ok, rare = postal.send(message(1, family_name="髙橋"), message(2, family_name="𠮷田"))
    assert ok.status is DeliveryStatus.SENT
    assert rare.status is DeliveryStatus.REJECTED
    assert "the name has a character cp932 cannot write (U+20BB7, character 1)" in rare.error  # type: ignore[operator]
    postal.finish()
    data = only(directory, "*[0-9].csv").read_bytes()
    assert not data.startswith(b"\xef\xbb\xbf")
    rows = read_csv(only(directory, "*[0-9].csv"), "cp932")
    assert [r[5] for r in rows[1:]] == ["髙橋 花子1 様"]
    assert b"?" not in data
    listed = read_csv(only(directory, "*-unaddressable.csv"))
    assert listed[1][5] == "𠮷田 花子2"  # the operator's list is UTF-8: it holds the name


def test_a_character_the_encoding_lacks_at_build_time_names_the_row_and_writes_nothing(
    directory: Path,
) -> None:
    # Sent while the settings said UTF-8; the print service's encoding changed since.
    Postal(PostalSettings(directory=directory)).send(message(1), message(2, given_name="㐂子"))
    cp932 = Postal(PostalSettings(directory=directory, encoding="cp932"))
    with pytest.raises(
        DataError, match=r"\.csv: row 3, column 6 \(宛名\): U\+3402 cannot be written in cp932"
    ):
        cp932.finish()
    assert not list(directory.glob("*.csv")) and not list(directory.glob("*.pdf"))
    Postal(PostalSettings(directory=directory)).finish()  # the run stayed open
    assert len(read_csv(only(directory, "*.csv"))) == 3


def test_a_restart_mid_campaign_neither_repeats_nor_loses_a_row(
    settings: PostalSettings, directory: Path
) -> None:
    first = Postal(settings)
    before = first.send(*[message(n) for n in range(1, 6)])
    run = before[0].provider_id.split("#")[0]  # type: ignore[union-attr]
    journal = directory / ".journal" / f"{run}.jsonl"
    # The process dies while writing message 6's line: half of it reached the disk.
    with journal.open("ab") as torn:
        torn.write(b'{"id": "tokyo-tea.c1.p6.postal", "recipient": {"message_id": "tok')
    runs._stores.clear()  # a new process knows only what is on disk

    second = Postal(settings)
    # Messages 4 and 5 come again (their answers were lost), then the rest.
    after = second.send(*[message(n) for n in range(4, 11)])
    assert [o.provider_id for o in after[:2]] == [o.provider_id for o in before[3:]]
    assert [o.provider_id for o in after[2:]] == [f"{run}#{n}" for n in range(6, 11)]
    second.finish()

    ids = [row[8] for row in read_csv(directory / f"{run}.csv")[1:]]
    assert ids == [f"tokyo-tea.c1.p{n}.postal" for n in range(1, 11)]
    (page,) = pdf_text(directory / f"{run}-labels.pdf")
    assert [n for n in range(1, 11) if f"花子{n} 様" in page] == list(range(1, 11))


def test_a_finished_run_is_never_written_again(settings: PostalSettings, directory: Path) -> None:
    postal = Postal(settings)
    (first,) = postal.send(message(1))
    postal.finish()
    run = first.provider_id.split("#")[0]  # type: ignore[union-attr]
    files = {p: p.read_bytes() for p in directory.glob(f"{run}*")}
    postal.finish()  # nothing new: nothing rebuilt

    # Sent again (an operator's retry), message 1 keeps its label; message 2 opens a run.
    again, second = postal.send(message(1), message(2))
    assert again.provider_id == first.provider_id
    assert second.provider_id == f"{run}-2#1"
    postal.finish()
    assert {p: p.read_bytes() for p in directory.glob(f"{run}.*")} == {
        p: b for p, b in files.items() if p.name.startswith(f"{run}.")
    }
    assert (directory / f"{run}-labels.pdf").read_bytes() == files[directory / f"{run}-labels.pdf"]
    assert [r[8] for r in read_csv(directory / f"{run}-2.csv")[1:]] == ["tokyo-tea.c1.p2.postal"]


def test_a_file_already_there_is_never_overwritten(
    settings: PostalSettings, directory: Path
) -> None:
    postal = Postal(settings)
    (probe,) = postal.send(message(1, campaign="probe"))
    date = probe.provider_id.split("_")[-1].split("#")[0]  # type: ignore[union-attr]
    theirs = directory / f"tokyo-tea_winter_{date}.csv"
    theirs.write_text("the operator's own file", encoding="utf-8")
    (outcome,) = postal.send(message(1))
    assert outcome.provider_id == f"tokyo-tea_winter_{date}-2#1"
    postal.finish()
    assert theirs.read_text(encoding="utf-8") == "the operator's own file"


def test_a_directory_that_cannot_be_written_is_a_failure(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("", encoding="utf-8")
    postal = Postal(PostalSettings(directory=blocker / "dm"))
    (outcome,) = postal.send(message(1))
    assert outcome.status is DeliveryStatus.FAILED
    assert "cannot write the postal DM files" in outcome.error  # type: ignore[operator]


def test_two_campaigns_of_one_directory_keep_their_own_runs(
    settings: PostalSettings, directory: Path
) -> None:
    postal = Postal(settings)
    postal.send(message(1, campaign="a"), message(2, campaign="a_b"), message(3, campaign="a"))
    postal.finish("a")
    postal.finish("a_b")
    a = read_csv(only(directory, "tokyo-tea_a_2*[0-9].csv"))
    ab = read_csv(only(directory, "tokyo-tea_a_b_*[0-9].csv"))
    assert [r[6] for r in a[1:]] == ["1", "3"] and [r[6] for r in ab[1:]] == ["2"]


def forget(settings: PostalSettings, *numbers: int) -> list[str]:
    """The dispatcher's ``forget``, for messages ``numbers`` (a redacted person's)."""
    ids = [f"tokyo-tea.c1.p{n}.postal" for n in numbers]
    return plugin.DISPATCHER.forget(settings, "tokyo-tea", ids)  # type: ignore[misc]


def test_a_redaction_takes_a_message_out_of_an_open_run_seen_by_another_process(
    settings: PostalSettings, directory: Path
) -> None:
    writer = Postal(settings)
    first = writer.send(message(1), message(2, given_name="美咲"), message(3))
    run = first[0].provider_id.split("#")[0]  # type: ignore[union-attr]
    journal = directory / ".journal" / f"{run}.jsonl"
    assert "美咲".encode() in journal.read_bytes()
    holding = plugin.DISPATCHER.holding
    assert holding is not None
    assert holding(settings, "tokyo-tea", ["tokyo-tea.c1.p2.postal"]) == [run]
    # Another process (its own memory of the journal) redacts while the run is open.
    other = runs.Runs(directory.resolve())
    assert other.forget("tokyo-tea", ["tokyo-tea.c1.p2.postal"], settings) == []
    assert "美咲".encode() not in journal.read_bytes()
    assert holding(settings, "tokyo-tea", ["tokyo-tea.c1.p2.postal"]) == []
    # The writer, which had read the journal before, reads it again and goes on.
    (fourth,) = writer.send(message(4))
    writer.finish()
    rows = read_csv(directory / f"{run}.csv")[1:]
    assert [r[8] for r in rows] == [f"tokyo-tea.c1.p{n}.postal" for n in (1, 3, 4)]
    assert fourth.provider_id == f"{run}#3"
    assert not any("美咲" in page for page in pdf_text(directory / f"{run}-labels.pdf"))


def test_a_redaction_rebuilds_a_finished_run_or_deletes_what_cannot_be_rebuilt(
    settings: PostalSettings, directory: Path
) -> None:
    postal = Postal(settings)
    (one, _two, _bad) = postal.send(
        message(1),
        message(2, given_name="㐂子"),
        message(3, postal_address={**ADDRESS, "postal_code": "1"}),
    )
    postal.finish()
    run = one.provider_id.split("#")[0]  # type: ignore[union-attr]
    assert (directory / f"{run}-unaddressable.csv").exists()
    # Message 3 was the only one listed as unaddressable: that list goes.
    changed = forget(settings, 3)
    assert f"{run}-unaddressable.csv" in changed
    assert not (directory / f"{run}-unaddressable.csv").exists()
    assert len(read_csv(directory / f"{run}.csv")) == 3  # the header and two labels
    # The print service's encoding changed since: the run cannot be built again, so a
    # redaction of message 1 deletes its files rather than keep her in them.
    cp932 = PostalSettings(directory=directory, encoding="cp932")
    assert sorted(forget(cp932, 1)) == [f"{run}-labels.pdf", f"{run}.csv"]
    assert not list(directory.glob(f"{run}*"))
    journal = (directory / ".journal" / f"{run}.jsonl").read_bytes()
    assert b"p1.postal" not in journal and b"p2.postal" in journal
