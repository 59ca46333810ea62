"""The host: hookspecs, plugin manager, records, store, sync engine and scheduler."""
