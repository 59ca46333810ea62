"""omnicrm.toml files for tests that run the real CLI in a process of its own."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def write_synthetic_config(
    path: Path, store_url: str, settings: dict[str, Any], *, batch_size: int, lookback: str = ""
) -> None:
    """A config with one connection, ``shop``, of the synthetic test channel."""
    body = "\n".join(f"{k} = {v}" for k, v in settings.items())
    window = f'lookback = "{lookback}"\n' if lookback else ""
    path.write_text(
        f'[store]\nurl = "{store_url}"\n\n'
        f'[connections.shop]\nchannel = "synthetic"\n{window}batch_size = {batch_size}\n'
        f"[connections.shop.settings]\n{body}\n",
        encoding="utf-8",
    )
