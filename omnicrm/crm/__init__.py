"""The customer model on the framework: identity, profiles, segments, analytics, points,
interactions, CSV imports and the refresh after each sync. Imports only ``omnicrm.core``."""

# The store erases and exports what the CRM holds about a person through this holder.
from omnicrm.crm import personal as _personal  # noqa: F401  (registers on import)
