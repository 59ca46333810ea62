"""docs/campaigns.md's cart recovery example loads as written, its templates checked."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from omnicrm.app.config import load_config
from tests.docs.markdown import blocks


def test_the_documented_cart_recovery_loads(tmp_path: Path) -> None:
    (example,) = [
        b.text for b in blocks("campaigns.md") if b.language == "toml" and "cart_recovery" in b.text
    ]
    path = tmp_path / "omnicrm.toml"
    path.write_text('[shops.my-shop]\nname = "東京茶舗"\n\n' + example, encoding="utf-8")
    rule = load_config(path, {}).shop("my-shop").messaging.cart_recovery
    assert rule is not None and rule.enabled
    assert rule.delay == dt.timedelta(hours=1)
    assert rule.recovery_url is not None and "{id}" in rule.recovery_url
    assert "checkout.recovery_url" in rule.body
