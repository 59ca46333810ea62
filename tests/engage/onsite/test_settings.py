"""``[offers]`` and ``[storefront]`` read from omnicrm.toml, mistakes named by line and key."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel

from omnicrm.app.config import load_config
from omnicrm.errors import ConfigError


class SiteSettings(BaseModel):
    domain: str = "tokyo-tea.myshopify.com"


CHANNELS = {"site": SiteSettings}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "omnicrm.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_only_shop_takes_the_top_level_offers_and_storefront(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TOKEN_SECRET", "s3cret")
    config = load_config(
        write(
            tmp_path,
            """
[storefront]
domains = ["https://Tokyo-Tea.jp"]
public_key = "pk-tokyo-tea-01"
customer_connection = "web"
token_secret = { env = "TOKEN_SECRET" }

[connections.web]
channel = "site"

[offers.second-visit]
kind = "popup"
text = "10%OFF"
min_visits = 2
variants = [{ name = "A" }, { name = "B", weight = 2, coupon = "B15" }]
""",
        ),
        CHANNELS,
    )
    shop = config.shop(None)
    assert shop.storefront.domains == ["https://tokyo-tea.jp"]
    assert shop.storefront.token_secret is not None
    assert shop.storefront.token_secret.get_secret_value() == "s3cret"
    offer = shop.offers["second-visit"]
    assert (offer.kind, offer.min_visits, [v.name for v in offer.all_variants()]) == (
        "popup",
        2,
        ["A", "B"],
    )
    assert config.warnings == ()


def test_each_shop_has_its_own_offers(tmp_path: Path) -> None:
    config = load_config(
        write(
            tmp_path,
            """
[shops.tokyo]
[shops.tokyo.offers.banner]
kind = "banner"
text = "送料無料"
[shops.osaka]
""",
        ),
        CHANNELS,
    )
    assert list(config.shop("tokyo").offers) == ["banner"]
    assert config.shop("osaka").offers == {}


@pytest.mark.parametrize(
    ("text", "key", "message"),
    [
        ('[offers.x]\nkind = "modal"\ntext = "a"\n', "offers.x.kind", "popup"),
        ('[offers.x]\nkind = "popup"\n', "offers.x.text", "required"),
        (
            '[offers.x]\nkind = "popup"\ntext = "a"\nstart = 2026-12-01T00:00:00\n',
            "offers.x.start",
            "offset",
        ),
        (
            '[offers.x]\nkind = "popup"\ntext = "a"\nimage = "javascript:alert(1)"\n',
            "offers.x.image",
            "URL",
        ),
        (
            '[shops.a]\n[shops.a.offers.x]\nkind = "popup"\ntext = "a"\nmax_impressions = 0\n',
            "shops.a.offers.x.max_impressions",
            "greater",
        ),
        ('[storefront]\ndomains = ["tokyo-tea.jp"]\n', "storefront.domains", "origin"),
        (
            '[storefront]\ncustomer_connection = "nowhere"\n',
            "storefront.customer_connection",
            "no valid",
        ),
        (
            '[shops.a]\n[shops.b]\n[offers.x]\nkind = "popup"\ntext = "a"\n',
            "offers",
            "several shops",
        ),
        (
            '[shops.a.storefront]\npublic_key = "pk-same-key-1"\n'
            '[shops.b.storefront]\npublic_key = "pk-same-key-1"\n',
            "public_key",
            "same public key",
        ),
    ],
    ids=[
        "kind",
        "no-text",
        "naive-start",
        "script-url",
        "zero-cap",
        "domain-not-origin",
        "unknown-connection",
        "offers-of-several-shops",
        "shared-key",
    ],
)
def test_a_mistake_names_its_key_and_line(
    tmp_path: Path, text: str, key: str, message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text), CHANNELS)
    assert key in (caught.value.key or ""), caught.value
    assert message in str(caught.value)
    assert caught.value.line is not None


def test_a_token_secret_written_in_the_file_is_warned_about(tmp_path: Path) -> None:
    config = load_config(
        write(
            tmp_path,
            '[connections.web]\nchannel = "site"\n[storefront]\ncustomer_connection = "web"\n'
            'token_secret = "written-here"\n',
        ),
        CHANNELS,
    )
    assert any("token_secret" in w for w in config.warnings)
    assert not any("written-here" in w for w in config.warnings)
