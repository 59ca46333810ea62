"""Reaching customers: campaigns planned from a segment, an outbox every message goes
through once, and the checks before each send (consent, caps, quiet hours, hold-out).

The dispatchers themselves are plugins (``omnicrm.core.dispatch``); consent lives in the
core (``omnicrm.core.consent``). docs/campaigns.md is the operator's reference.
"""

from omnicrm.engage import personal as _personal  # noqa: F401  (registers on import)
