"""A label's lines: Japanese order, wrapped within the label as Japanese is wrapped,
shrunk to fit, refused when even the smallest size cannot hold them."""

from __future__ import annotations

import pytest
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics

from omnicrm.plugins.postal.address import Recipient, Unaddressable
from omnicrm.plugins.postal.labels import MIN_SIZE, NO_LINE_START, layout
from omnicrm.plugins.postal.settings import LabelSheet


def recipient(street: str = "神宮前1-2-3", **fields: str) -> Recipient:
    values = {
        "message_id": "m1",
        "customer_id": "1",
        "campaign": "winter",
        "variant": "A",
        "postal_code": "5300001",
        "prefecture": "大阪府",
        "city": "大阪市北区",
        "street": street,
        "building": "",
        "family_name": "髙橋",
        "given_name": "一郎",
        "honorific": "様",
    }
    values.update(fields)
    return Recipient(**values)


def test_the_lines_are_in_japanese_order() -> None:
    lines = layout(recipient(building="青山ハイツ101"), LabelSheet())
    assert [line.text for line in lines] == [
        "〒530-0001",
        "大阪府大阪市北区神宮前1-2-3",
        "青山ハイツ101",
        "髙橋 一郎 様",
    ]
    assert lines[-1].centred and lines[-1].size > lines[0].size


def test_a_long_address_wraps_at_a_space_and_never_starts_a_line_with_a_small_kana() -> None:
    sheet = LabelSheet()
    street = "梅田3丁目1番1号 大阪ステーションシティ ノースゲートビルディング"
    lines = layout(recipient(street), sheet)
    inner = (sheet.label_width_mm - 2 * sheet.padding_mm) * mm
    address = [line for line in lines[1:-1]]
    assert len(address) > 1
    for line in lines:
        assert pdfmetrics.stringWidth(line.text, sheet.font, line.size) <= inner, line.text
        assert line.text[0] not in NO_LINE_START, line.text
    assert " ".join(line.text for line in address).replace(" ", "") == (
        "大阪府大阪市北区" + street
    ).replace(" ", "")
    # Without spaces to break at, the break moves back one character before a small kana.
    narrow = LabelSheet(label_width_mm=40.0, padding_mm=2.0)
    for line in layout(recipient("ステーションシティショッピングセンター"), narrow):
        assert line.text[0] not in NO_LINE_START, line.text


def test_text_that_fits_nowhere_is_refused() -> None:
    tiny = LabelSheet(label_width_mm=30.0, label_height_mm=15.0, padding_mm=2.0)
    with pytest.raises(Unaddressable, match=f"too long for a label even at {MIN_SIZE:g} pt"):
        layout(recipient("梅田3丁目1番1号" * 6), tiny)
    with pytest.raises(Unaddressable, match=r"the name .*U\+1F600"):
        layout(recipient(given_name="一郎😀"), LabelSheet())
