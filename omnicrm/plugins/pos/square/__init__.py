"""Square (Square Point of Sale): store customers, register sales and Square Loyalty.

``channel`` is what the ``pos`` plugin registers (channel type ``square``); the HTTP work
is in ``client``, field mapping in ``mapping``, webhooks in ``webhooks`` and the local
emulator in ``sandbox``. Square-Version 2025-08-20.
"""
