"""Analytics: customer-level models and reports (predicted CLV, ...)."""

from omnicrm.core.analytics.clv import (
    BgNbd,
    GammaGamma,
    RfmSummary,
    TransactionColumns,
    predicted_clv,
    rfm_summary,
)

__all__ = [
    "BgNbd",
    "GammaGamma",
    "RfmSummary",
    "TransactionColumns",
    "predicted_clv",
    "rfm_summary",
]
