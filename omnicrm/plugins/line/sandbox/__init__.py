"""The LINE Messaging API emulator (:class:`LineEmulator`) and the dispatcher's sandbox.

``python -m omnicrm.plugins.line.sandbox`` runs one in the foreground and prints the
settings that reach it.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from omnicrm.plugins.line.sandbox.emulator import (
    KEPT_FILE,
    Delivery,
    Exchange,
    LineEmulator,
    demo_user,
)

DEMO_FRIENDS = 20
"""Demo users who follow each demo shop's account (``demo_user(client, 0..19)``)."""
DEMO_BLOCKED = 1
"""Then demo users who blocked it (``demo_user(client, 20)``): a push to them is refused."""


@contextmanager
def sandbox(*, client: int = 0, keep_in: Path | None = None) -> Iterator[Mapping[str, Any]]:
    """A running emulator for demo shop ``client``, its friends added; yields settings
    of the ``line`` dispatcher that reach it. With ``keep_in``, every delivery is also
    appended to ``keep_in/delivered.jsonl``."""
    with LineEmulator(keep_in=keep_in) as emulator:
        seed(emulator, client)
        yield emulator.settings()


def seed(emulator: LineEmulator, client: int = 0) -> None:
    """Demo shop ``client``'s followers, and the one who blocked the account."""
    for number in range(DEMO_FRIENDS):
        emulator.add_friend(demo_user(client, number))
    for number in range(DEMO_FRIENDS, DEMO_FRIENDS + DEMO_BLOCKED):
        emulator.add_friend(demo_user(client, number))
        emulator.block(demo_user(client, number))


def main(argv: list[str] | None = None) -> None:
    """Run an emulator until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m omnicrm.plugins.line.sandbox")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--webhook-url", help="where follow/unfollow/accountLink are posted")
    args = parser.parse_args(argv)
    emulator = LineEmulator(port=args.port, webhook_url=args.webhook_url)
    seed(emulator)
    sock = emulator.bind()
    print(json.dumps(emulator.settings(), indent=2), flush=True)
    emulator.serve_forever(sock)


__all__ = [
    "DEMO_BLOCKED",
    "DEMO_FRIENDS",
    "KEPT_FILE",
    "Delivery",
    "Exchange",
    "LineEmulator",
    "demo_user",
    "sandbox",
    "seed",
]
