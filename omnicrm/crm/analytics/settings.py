"""The ``[analytics]`` section of omnicrm.toml: report windows and the CLV model's knobs.

Months and days are the shop's (its ``[shops.ID] timezone``); a shop may override any of
these in ``[shops.ID.analytics]``.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class AnalyticsSettings(BaseModel):
    """Report defaults and predicted-CLV settings; every field has a default."""

    model_config = ConfigDict(extra="forbid")

    f2_window_days: int = Field(
        default=90,
        ge=1,
        le=3650,
        description="F2 conversion: days allowed for the second purchase.",
    )
    retention_months: int = Field(
        default=12, ge=1, le=120, description="Cohort retention: months shown after acquisition."
    )
    clv_horizon_weeks: float = Field(
        default=52, gt=0, le=520, description="Predicted CLV: weeks of future purchases counted."
    )
    clv_discount: float = Field(
        default=0.10, ge=0, le=1, description="Predicted CLV: annual discount rate (0.10 = 10%)."
    )
    clv_min_customers: int = Field(
        default=30, ge=2, description="Fit no CLV model on fewer customers with purchases."
    )
    clv_min_repeaters: int = Field(
        default=10, ge=1, description="... nor on fewer customers with a second purchase day."
    )
