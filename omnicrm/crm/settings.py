"""The ``[crm]`` section of ``omnicrm.toml``: when the refresh runs."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from omnicrm.core.settings import CronOrOff


class CrmSection(BaseModel):
    """When the CRM refreshes profiles, scores and segment counts (``[crm]``)."""

    model_config = ConfigDict(extra="forbid")

    refresh_after_sync: bool = Field(
        default=True, description="Refresh the profiles a sync touched as soon as it ends."
    )
    nightly: CronOrOff = Field(
        default="30 3 * * *",
        description="Cron (scheduler timezone) of the full refresh: rescoring, segment "
        'recount, predicted CLV, point expiry and reconciliation; "off" to turn it off.',
    )
