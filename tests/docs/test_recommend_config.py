"""docs/configuration.md's ``[recommend] weights`` example loads as written with the
installed recommenders, and means what the text under it says."""

from __future__ import annotations

from pathlib import Path

from omnicrm.app.runtime import Runtime
from omnicrm.core.host import Host
from tests.docs.markdown import blocks


def test_the_documented_weights_load_with_the_installed_recommenders(tmp_path: Path) -> None:
    (example,) = [
        b.text for b in blocks("configuration.md") if b.language == "toml" and "weights" in b.text
    ]
    path = tmp_path / "omnicrm.toml"
    path.write_text(
        '[shops.tokyo-tea]\nname = "東京茶舗"\n\n[shops.osaka-sweets]\nname = "大阪スイーツ"\n\n'
        + example,
        encoding="utf-8",
    )
    config = Runtime.load(path, host=Host.load()).config
    tea, sweets = config.shop("tokyo-tea").recommend, config.shop("osaka-sweets").recommend
    assert tea.weights == {"also-bought": 1.0, "reorder": 0.8, "segment-popular": 0.2}
    assert sweets.weights == {"also-bought": 1.0, "reorder": 0.0, "segment-popular": 0.2}
    assert (tea.items, sweets.items) == (10, 5)
