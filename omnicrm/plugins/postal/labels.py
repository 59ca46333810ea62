"""A PDF of address labels in Japanese order, with reportlab's Japanese CID fonts.

Each label reads, top to bottom: 〒 and the postal code, the prefecture, city and street
(wrapped to the label's width), the building, then the name with its honorific in a
larger size. The fonts are reportlab's CID fonts (HeiseiMin-W3, HeiseiKakuGo-W5): the
PDF names an Adobe-Japan1 font that every PDF reader supplies, so nothing is downloaded
and the file stays small. Such a font encodes text as UCS-2, so a character outside the
Basic Multilingual Plane (𠮷, an emoji) cannot be drawn: :func:`layout` refuses it,
naming the field.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import BinaryIO

from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen import canvas

from omnicrm.plugins.postal.address import Recipient, Unaddressable
from omnicrm.plugins.postal.settings import PAGE_SIZES_MM, LabelSheet

MIN_SIZE = 6.0
"""The smallest size, in points, a label's text is shrunk to before it is refused."""
LEADING = 1.25
"""Line height as a multiple of the font size."""

_registered: set[str] = set()
_lock = threading.Lock()


def font(name: str) -> str:
    """Register the CID font ``name`` with reportlab once; its name."""
    with _lock:
        if name not in _registered:
            pdfmetrics.registerFont(UnicodeCIDFont(name))
            _registered.add(name)
    return name


@dataclass(frozen=True)
class Line:
    text: str
    size: float
    centred: bool = False


def _drawable(text: str, what: str) -> None:
    for n, char in enumerate(text, 1):
        if ord(char) > 0xFFFF:
            raise Unaddressable(
                f"the {what} has a character the label font cannot draw "
                f"(U+{ord(char):04X}, character {n})"
            )


NO_LINE_START = frozenset(
    "、。・ー」』〉》ぁぃぅぇぉっゃゅょゎァィゥェォッャュョヮヵヶ々"
    # the full-width comma, full stop, colon, semicolon, question and exclamation marks
    # and closing brackets
    "\uff0c\uff0e\uff1a\uff1b\uff1f\uff01\uff09\u3015\uff3d\uff5d"
)
"""Characters a Japanese line never starts with (禁則処理): small kana, closing marks."""


def _wrap(text: str, face: str, size: float, width: float) -> list[str]:
    """``text`` broken into lines no wider than ``width`` points: at the last space that
    allows it (an address's parts), else between characters (Japanese has no spaces),
    never putting a small kana or a closing mark at the start of a line."""

    def fits(part: str) -> bool:
        return bool(pdfmetrics.stringWidth(part, face, size) <= width)

    lines: list[str] = []
    rest = text.strip()
    while rest:
        if fits(rest):
            lines.append(rest)
            break
        n = 1  # the longest start of rest that fits (at least one character)
        while n < len(rest) and fits(rest[: n + 1]):
            n += 1
        cut = n
        space = rest.rfind(" ", 1, n + 1)
        if space > 0:
            cut = space
        else:  # back past small kana and closing marks ("ショッ" moves whole)
            while cut > 1 and rest[cut] in NO_LINE_START:
                cut -= 1
        lines.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    return lines


def layout(recipient: Recipient, sheet: LabelSheet) -> list[Line]:
    """The lines of ``recipient``'s label, shrunk until they fit;
    :class:`Unaddressable` when they cannot (or hold a character the font lacks)."""
    _drawable(recipient.address, "address")
    _drawable(recipient.building, "building")
    _drawable(recipient.addressed_name, "name")
    face = font(sheet.font)
    width = (sheet.label_width_mm - 2 * sheet.padding_mm) * mm
    height = (sheet.label_height_mm - 2 * sheet.padding_mm) * mm
    size, name_size = sheet.font_size, sheet.name_size
    while True:
        name_fits = pdfmetrics.stringWidth(recipient.addressed_name, face, name_size) <= width
        lines = [Line(f"〒{recipient.postal_code_display}", size)]
        lines += [Line(t, size) for t in _wrap(recipient.address, face, size, width)]
        lines += [Line(t, size) for t in _wrap(recipient.building, face, size, width)]
        lines.append(Line(recipient.addressed_name, name_size, centred=True))
        # A half line between the address and the name, as a label is usually laid out.
        needed = sum(line.size * LEADING for line in lines) + size * LEADING / 2
        if name_fits and needed <= height:
            return lines
        if (not name_fits and name_size > MIN_SIZE) or (needed > height and name_size > size * 1.2):
            name_size = max(MIN_SIZE, name_size - 0.5)
        elif needed > height and size > MIN_SIZE:
            size = max(MIN_SIZE, size - 0.5)
        else:
            what = "address" if needed > height else "name"
            raise Unaddressable(f"the {what} is too long for a label even at {MIN_SIZE:g} pt")


def write_labels(
    out: BinaryIO, recipients: Iterable[Recipient], sheet: LabelSheet, *, title: str
) -> int:
    """Write the labels of ``recipients`` as a PDF to ``out``, in order, filling each
    sheet row by row; the number of labels written."""
    face = font(sheet.font)
    page_w, page_h = (side * mm for side in PAGE_SIZES_MM[sheet.page])
    # invariant: no creation time or random id in the file, so one journal always
    # makes the same bytes (a rebuild after a restart is the same file).
    pdf = canvas.Canvas(out, pagesize=(page_w, page_h), invariant=True)
    pdf.setTitle(title)
    pdf.setCreator("omnicrm postal")
    count = 0
    for recipient in recipients:
        slot = count % sheet.per_page
        if count and slot == 0:
            pdf.showPage()
        col, row = slot % sheet.columns, slot // sheet.columns
        left = (sheet.left_mm + col * (sheet.label_width_mm + sheet.gap_x_mm)) * mm
        top = page_h - (sheet.top_mm + row * (sheet.label_height_mm + sheet.gap_y_mm)) * mm
        inner_left = left + sheet.padding_mm * mm
        inner_width = (sheet.label_width_mm - 2 * sheet.padding_mm) * mm
        y = top - sheet.padding_mm * mm
        lines = layout(recipient, sheet)
        for n, line in enumerate(lines):
            if line.centred and n:
                y -= lines[n - 1].size * LEADING / 2
            y -= line.size * LEADING
            pdf.setFont(face, line.size)
            if line.centred:
                pdf.drawCentredString(inner_left + inner_width / 2, y + line.size * 0.2, line.text)
            else:
                pdf.drawString(inner_left, y + line.size * 0.2, line.text)
        count += 1
    if count:
        pdf.showPage()
    pdf.save()
    return count
