"""Run the Shopify sandbox as its own process (benchmarks, manual tries).

    python -m omnicrm.plugins.shopify.sandbox --customers 100000 --port 8765 --seed 1 \\
        --bucket-size 2000 --restore-rate 100

Prints one JSON line when it answers: ``{"event": "ready", "settings": {...}, ...}`` with
the connection settings and start-up figures, then serves until interrupted.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time

from . import STANDARD_BUCKET, STANDARD_RESTORE_RATE
from .server import ShopifySandbox


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and serve."""
    parser = argparse.ArgumentParser(prog="python -m omnicrm.plugins.shopify.sandbox")
    parser.add_argument("--customers", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--bucket-size", type=float, default=STANDARD_BUCKET)
    parser.add_argument("--restore-rate", type=float, default=STANDARD_RESTORE_RATE)
    parser.add_argument("--max-cost", type=int, default=1000)
    parser.add_argument("--live", type=float, default=0, help="seconds between live changes")
    args = parser.parse_args(argv)
    began = time.perf_counter()
    shop = ShopifySandbox(
        customers=args.customers,
        seed=args.seed,
        host=args.host,
        port=args.port,
        bucket_size=args.bucket_size,
        restore_rate=args.restore_rate,
        max_cost=args.max_cost,
        live_interval=args.live or None,
    )
    customers_ready = time.perf_counter() - began
    shop.data.wait_for_orders()
    sock = shop.bind()
    ready = {
        "event": "ready",
        "settings": shop.settings(),
        "customers": shop.data.n,
        "orders": shop.data.base_orders,
        "customers_ready_seconds": round(customers_ready, 3),
        "orders_ready_seconds": round(time.perf_counter() - began, 3),
        "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    print(json.dumps(ready, ensure_ascii=False), flush=True)
    shop.serve_forever(sock)
    return 0


if __name__ == "__main__":
    sys.exit(main())
