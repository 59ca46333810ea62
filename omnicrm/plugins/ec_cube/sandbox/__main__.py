"""Run the EC-CUBE sandbox as its own process (benchmarks, manual tries).

    python -m omnicrm.plugins.ec_cube.sandbox --orders 100000 --customers 5000 --tokens t.json

Prints one JSON line when it answers: ``{"event": "ready", "settings": {...}, ...}`` with
settings already authorised (the tokens in ``--tokens``), then serves until interrupted.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path

from . import authorise
from .data import generate
from .server import EccubeSandbox


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and serve."""
    parser = argparse.ArgumentParser(prog="python -m omnicrm.plugins.ec_cube.sandbox")
    parser.add_argument("--customers", type=int, default=500)
    parser.add_argument("--orders", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--tokens", type=Path, required=True, help="token file to write")
    args = parser.parse_args(argv)
    began = time.perf_counter()
    data = generate(args.seed, customers=args.customers, orders=args.orders)
    server = EccubeSandbox(data, host=args.host, port=args.port)
    sock = server.bind()
    # Authorise through the server itself once it serves (the flow is HTTP).
    ready = threading.Event()

    def announce() -> None:
        settings = authorise(server, args.tokens)
        event = {
            "event": "ready",
            "settings": settings,
            "customers": len(data.customers),
            "orders": len(data.orders),
            "ready_seconds": round(time.perf_counter() - began, 3),
        }
        print(json.dumps(event, ensure_ascii=False), flush=True)
        ready.set()

    threading.Thread(target=announce, daemon=True).start()
    server.serve_forever(sock)
    return 0


if __name__ == "__main__":
    sys.exit(main())
