"""Settings of the postal dispatcher: where the files go, the CSV, the label sheet."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from omnicrm import TimeZoneName

Column = Literal[
    "postal_code",
    "prefecture",
    "city",
    "street",
    "building",
    "address",
    "name",
    "family_name",
    "given_name",
    "customer_id",
    "variant",
    "message_id",
    "campaign",
]
"""What a column of the recipient CSV may hold (see :data:`HEADERS`)."""

HEADERS: dict[str, str] = {
    "postal_code": "郵便番号",
    "prefecture": "都道府県",
    "city": "市区町村",
    "street": "番地",
    "building": "建物名",
    "address": "住所",
    "name": "宛名",
    "family_name": "姓",
    "given_name": "名",
    "customer_id": "顧客ID",
    "variant": "パターン",
    "message_id": "メッセージID",
    "campaign": "キャンペーン",
}
"""The default header of each column, as Japanese print services name them."""

DEFAULT_COLUMNS: tuple[Column, ...] = (
    "postal_code",
    "prefecture",
    "city",
    "street",
    "building",
    "name",
    "customer_id",
    "variant",
    "message_id",
)

Font = Literal["HeiseiMin-W3", "HeiseiKakuGo-W5"]
"""reportlab's Japanese CID fonts: Mincho and Gothic, no font file needed."""

PAGE_SIZES_MM: dict[str, tuple[float, float]] = {
    "A4": (210.0, 297.0),
    "B5": (182.0, 257.0),
    "letter": (215.9, 279.4),
}


class LabelSheet(BaseModel):
    """A sheet of address labels; the default is a common A4 12-up (2 x 6) sheet."""

    model_config = ConfigDict(extra="forbid")

    page: Literal["A4", "B5", "letter"] = Field(default="A4", description="The paper size.")
    columns: int = Field(default=2, ge=1, le=10, description="Labels across a sheet.")
    rows: int = Field(default=6, ge=1, le=30, description="Labels down a sheet.")
    label_width_mm: float = Field(default=86.4, gt=0, description="Width of one label.")
    label_height_mm: float = Field(default=42.3, gt=0, description="Height of one label.")
    top_mm: float = Field(default=21.5, ge=0, description="From the top edge to the first row.")
    left_mm: float = Field(
        default=18.6, ge=0, description="From the left edge to the first column."
    )
    gap_x_mm: float = Field(default=0.0, ge=0, description="Between two labels across.")
    gap_y_mm: float = Field(default=0.0, ge=0, description="Between two labels down.")
    padding_mm: float = Field(default=4.0, ge=0, description="Inside each label's edge.")
    font: Font = Field(default="HeiseiMin-W3", description="HeiseiMin-W3 or HeiseiKakuGo-W5.")
    font_size: float = Field(default=10.0, ge=5, le=20, description="The address, in points.")
    name_size: float = Field(default=14.0, ge=5, le=30, description="The name, in points.")

    @model_validator(mode="after")
    def _fits(self) -> LabelSheet:
        width, height = PAGE_SIZES_MM[self.page]
        across = self.left_mm + self.columns * self.label_width_mm
        across += (self.columns - 1) * self.gap_x_mm
        down = self.top_mm + self.rows * self.label_height_mm + (self.rows - 1) * self.gap_y_mm
        if across > width + 0.05 or down > height + 0.05:
            raise ValueError(
                f"{self.columns} x {self.rows} labels of {self.label_width_mm} x "
                f"{self.label_height_mm} mm from ({self.left_mm}, {self.top_mm}) mm do not "
                f"fit on {self.page} ({width:g} x {height:g} mm): they reach "
                f"{across:g} x {down:g} mm"
            )
        if 2 * self.padding_mm >= min(self.label_width_mm, self.label_height_mm):
            raise ValueError("padding_mm leaves no room inside a label")
        return self

    @property
    def per_page(self) -> int:
        return self.columns * self.rows


class PostalSettings(BaseModel):
    """Where a shop's postal DM files go and what they look like."""

    model_config = ConfigDict(extra="forbid")

    directory: Path | None = Field(
        default=None,
        description="Where each run's files are written (default: postal/ under the data "
        "dir); created when missing.",
    )
    columns: tuple[Column, ...] = Field(
        default=DEFAULT_COLUMNS, description="The recipient CSV's columns, in order."
    )
    headers: dict[Column, str] = Field(
        default_factory=dict,
        description="Header names instead of the default ones, by column "
        "(e.g. { postal_code = 'zip' }).",
    )
    encoding: Literal["utf-8-sig", "cp932"] = Field(
        default="utf-8-sig",
        description="utf-8-sig (UTF-8 with a BOM, which Excel reads) or cp932 (Shift_JIS, "
        "for a print service that takes only that); a name cp932 cannot write is refused, "
        "never written as '?'.",
    )
    honorific: str = Field(default="様", max_length=8, description="After each name.")
    labels: LabelSheet = Field(default_factory=LabelSheet, description="The label sheet.")
    timezone: TimeZoneName = Field(
        default="Asia/Tokyo", description="The zone of the date in the files' names."
    )

    @field_validator("columns")
    @classmethod
    def _columns(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("name at least one column")
        repeated = sorted({c for c in value if value.count(c) > 1})
        if repeated:
            raise ValueError(f"column(s) named twice: {', '.join(repeated)}")
        return value

    @field_validator("headers")
    @classmethod
    def _headers(cls, value: dict[str, str]) -> dict[str, str]:
        for column, header in value.items():
            if not header.strip():
                raise ValueError(f"the header of {column} is empty")
        return {column: header.strip() for column, header in value.items()}

    def header(self, column: Column) -> str:
        """The CSV header of ``column``."""
        return self.headers.get(column) or HEADERS[column]
