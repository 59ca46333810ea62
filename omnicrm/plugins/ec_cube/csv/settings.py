"""Settings of one EC-CUBE CSV connection: a shop whose admin CSV exports are imported."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from omnicrm import TimeZoneName
from omnicrm.plugins.ec_cube.csv.columns import CUSTOMER_FIELDS, ORDER_FIELDS


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

    @field_validator("columns")
    @classmethod
    def _known_fields(cls, value: dict[str, str]) -> dict[str, str]:
        known = {*CUSTOMER_FIELDS, *ORDER_FIELDS}
        for header, field in value.items():
            if field not in known:
                raise ValueError(f"{header!r}: {field!r} is no field (known: {sorted(known)})")
        return value
