"""Settings of one EC-CUBE CSV connection: a shop whose admin CSV exports are imported."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from omnicrm import TimeZoneName
from omnicrm.plugins.ec_cube.csv.columns import CUSTOMER_FIELDS, ORDER_FIELDS, PRODUCT_FIELDS

if TYPE_CHECKING:
    from omnicrm.plugins.ec_cube.csv.reader import Pricing

_TAX_RATE = (
    "The shop's consumption tax rate in percent (税率設定): product prices (販売価格, before "
    "tax) are shown with it, unless the export's 税率 column gives a class its own rate."
)


class EcCubeCsvSettings(BaseModel):
    """How to read one EC-CUBE shop's CSV exports (2.x or 4.x, told by their headers)."""

    model_config = ConfigDict(extra="forbid")

    site_name: str | None = Field(
        default=None, max_length=255, description="The shop's name, e.g. 'お茶の山田園'."
    )
    columns: dict[str, str] = Field(
        default_factory=dict,
        description="Header name -> field, for columns EC-CUBE's own headers miss (a "
        'column added by SQL, a renamed one), e.g. {"メルマガ希望" = "mailmaga"}.',
    )
    timezone: TimeZoneName | None = Field(
        default=None,
        description="The timezone the shop writes its times in (an IANA name); default "
        "the omnicrm shop's.",
    )

    url: str | None = Field(
        default=None,
        pattern=r"^https?://[^\s/]+(/[^\s]*)?$",
        description="The shop's base URL, e.g. 'https://shop.example.jp': imported products "
        "link to their pages and images under it (none without it).",
    )
    tax_rate: Annotated[Decimal, Field(ge=0, le=100, description=_TAX_RATE)] = Decimal(10)
    tax_rounding: Literal[1, 2, 3] = Field(
        default=1,
        description="The shop's 丸め規則 for tax: 1 四捨五入 (EC-CUBE's default), "
        "2 切り捨て, 3 切り上げ.",
    )

    @property
    def pricing(self) -> Pricing:
        """How the shop's product export reads (prices with tax, links)."""
        # The reader only when importing: loading the config stays light.
        from omnicrm.plugins.ec_cube.csv.reader import Pricing

        return Pricing(tax_rate=self.tax_rate, rounding=self.tax_rounding, url=self.url)

    @field_validator("columns")
    @classmethod
    def _known_fields(cls, value: dict[str, str]) -> dict[str, str]:
        known = {*CUSTOMER_FIELDS, *ORDER_FIELDS, *PRODUCT_FIELDS}
        for header, field in value.items():
            if field not in known:
                raise ValueError(f"{header!r}: {field!r} is no field (known: {sorted(known)})")
        return value
