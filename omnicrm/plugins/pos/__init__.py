"""The physical store's POS: members and sales from Smaregi, Square and CSV exports.

Each POS platform is its own channel type with its own subpackage (client, settings,
mapping, webhooks, sandbox): ``smaregi``, ``square``, and ``csv`` for registers without
an API (Airレジ and others), whose exports are imported with ``omnicrm import pos-csv``.
``plugin`` is what the ``omnicrm`` entry point ``pos`` names: it registers each channel
type and hands each stream call to the subpackage that owns the channel.
"""
