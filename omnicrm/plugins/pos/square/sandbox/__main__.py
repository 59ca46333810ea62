"""Run the Square sandbox as its own process (the demo, benchmarks, manual tries).

    python -m omnicrm.plugins.pos.square.sandbox --members 600 --sales 6000 --port 8766

Prints one JSON line when it answers: ``{"event": "ready", "settings": {...}, ...}`` with
the connection settings, then serves until interrupted.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from .server import DEFAULT_NOTIFICATION_URL, SquareSandbox


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and serve."""
    parser = argparse.ArgumentParser(prog="python -m omnicrm.plugins.pos.square.sandbox")
    parser.add_argument("--members", type=int, default=600)
    parser.add_argument("--sales", type=int, default=6000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument(
        "--no-loyalty", dest="loyalty", action="store_false", help="a seller without Square Loyalty"
    )
    parser.add_argument("--cursor-ttl", type=float, default=300.0)
    parser.add_argument("--notification-url", default=DEFAULT_NOTIFICATION_URL)
    args = parser.parse_args(argv)
    began = time.perf_counter()
    # Each option is named as the sandbox's argument it sets.
    seller = SquareSandbox(**vars(args))
    sock = seller.bind()
    ready = {
        "event": "ready",
        "settings": seller.settings(),
        "locations": {loc["id"]: loc["name"] for loc in seller.data.locations},
        "customers": len(seller.data.customers),
        "orders": len(seller.data.orders),
        "ready_seconds": round(time.perf_counter() - began, 3),
    }
    print(json.dumps(ready, ensure_ascii=False), flush=True)
    seller.serve_forever(sock)
    return 0


if __name__ == "__main__":
    sys.exit(main())
