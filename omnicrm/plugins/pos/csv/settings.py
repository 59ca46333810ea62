"""Settings of one POS CSV connection: one register (or store) whose exports are imported."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from omnicrm import TimeZoneName
from omnicrm.plugins.pos.csv.formats import FIELDS, Format


class PosCsvSettings(BaseModel):
    """How to read the exports of one register without an API."""

    model_config = ConfigDict(extra="forbid")

    format: Format = Field(
        default=Format.AIRREGI,
        description="The export's format when --format is not given: airregi (Airレジ "
        "会計明細), smaregi (スマレジ 取引履歴) or generic (docs/pos.md).",
    )
    columns: dict[str, str] = Field(
        default_factory=dict,
        description="Header name -> field, for columns the format's own names miss (a "
        'renamed or custom column), e.g. {"会員No" = "member_code"}.',
    )
    store_name: str | None = Field(
        default=None,
        max_length=255,
        description="The store's name (the orders' location) when the file has no store "
        "column, e.g. '渋谷店'.",
    )
    timezone: TimeZoneName | None = Field(
        default=None,
        description="The timezone of the register's times (an IANA name); default the shop's.",
    )

    @field_validator("columns")
    @classmethod
    def _known_fields(cls, value: dict[str, str]) -> dict[str, str]:
        for header, field in value.items():
            if field not in FIELDS:
                known = ", ".join(FIELDS)
                raise ValueError(f"{header!r}: {field!r} is no field (known: {known})")
        return value
