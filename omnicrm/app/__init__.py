"""The composition root: the ``omnicrm.toml`` model, the runtime that wires host, store,
engine, CRM and scheduler, and the webhook web app. The CLI and terminal UI sit on it."""
