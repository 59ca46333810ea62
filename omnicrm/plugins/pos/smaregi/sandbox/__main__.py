"""Run the Smaregi sandbox as its own process (benchmarks, manual tries).

    python -m omnicrm.plugins.pos.smaregi.sandbox --sales 470000 --members 20000 --port 8766

Prints one JSON line when it answers: ``{"event": "ready", "settings": {...}, ...}`` with
the connection settings and the seed's figures, then serves until interrupted.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from omnicrm.plugins.pos.seed import generate

from .server import SmaregiSandbox


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and serve."""
    parser = argparse.ArgumentParser(prog="python -m omnicrm.plugins.pos.smaregi.sandbox")
    parser.add_argument("--members", type=int, default=600)
    parser.add_argument("--sales", type=int, default=6000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    args = parser.parse_args(argv)
    began = time.perf_counter()
    data = generate(args.seed, members=args.members, sales=args.sales)
    server = SmaregiSandbox(data, host=args.host, port=args.port)
    sock = server.bind()
    ready = {
        "event": "ready",
        "settings": server.settings(),
        "members": len(data.members),
        "sales": len(data.sales),
        "details": data.details(),
        "ready_seconds": round(time.perf_counter() - began, 3),
    }
    print(json.dumps(ready, ensure_ascii=False), flush=True)
    server.serve_forever(sock)
    return 0


if __name__ == "__main__":
    sys.exit(main())
