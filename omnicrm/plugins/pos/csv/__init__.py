"""POS registers without an API (Airレジ and others): their CSV exports, imported.

``omnicrm import pos-csv CONNECTION FILE --format airregi|smaregi|generic`` reads one
export (:func:`read_export`) and writes its receipts as the connection's orders and its
members as its customers, the whole file in one transaction. The channel's streams are
where those records live; a sync has nothing to fetch (see :mod:`.channel`).
"""

from omnicrm.plugins.pos.csv.formats import FIELDS, Format
from omnicrm.plugins.pos.csv.reader import Export, read_export
from omnicrm.plugins.pos.csv.settings import PosCsvSettings

__all__ = ["FIELDS", "Export", "Format", "PosCsvSettings", "read_export"]
