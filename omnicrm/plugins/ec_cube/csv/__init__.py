"""EC-CUBE shops without the Web API (2.x, or 4.x without the plugin): the admin
screen's CSV exports (会員CSV, 受注CSV, 商品CSV), imported.

``omnicrm import ec_cube-csv CONNECTION customers.csv orders.csv products.csv`` reads
each export (:func:`read_export`, its kind told by its header) and writes its members
as the connection's customers, its orders as its orders and its product classes as its
products, each file in one transaction.
:mod:`.exports` writes shop data as those exports (2.x and 4.x header sets).
"""

from omnicrm.plugins.ec_cube.csv.reader import Export, Kind, Pricing, read_export
from omnicrm.plugins.ec_cube.csv.settings import EcCubeCsvSettings

__all__ = ["EcCubeCsvSettings", "Export", "Kind", "Pricing", "read_export"]
