"""The customer model on the framework: identity, profiles, segments, analytics, points,
interactions, CSV imports and the refresh after each sync. Imports only ``omnicrm.core``."""
