"""Recommendations in a campaign's messages: each person's own (what people who bought
what they bought also bought, store purchases counted), from the shop's catalogue with
price and link, nothing sold out, and only computed when a template names them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from omnicrm.core.channels import Stream
from omnicrm.core.host import Host
from omnicrm.core.store import Store
from omnicrm.crm.refresh import CrmSettings, refresh
from omnicrm.engage import campaigns
from omnicrm.engage.campaigns import Variant
from omnicrm.engage.recommend import for_customer, shop_catalogue, shop_history
from omnicrm.engage.templates import TemplateError
from omnicrm.plugins.recommenders import plugin as recommenders
from tests.engage.conftest import NOW, SHOP, TOKYO, messaging, person
from tests.engage.recommend.test_recommend import CUP, KETTLE, MUG, TEA, order, pid
from tests.engage.test_campaigns import make
from tests.engage.test_sender import sender
from tests.support import filedrop_plugin
from tests.support.filedrop_plugin import arrived
from tests.support.storefront import product

BODY = (
    "{{ name }}へのおすすめ:\n"
    "{% for item in recommendations %}{{ item.name }} | {{ item.price }} | {{ item.url }}\n"
    "{% else %}(なし)\n{% endfor %}"
)


@pytest.fixture
def host() -> Iterator[Host]:
    loaded = Host.load(
        extra={"recommenders": recommenders, "filedrop": filedrop_plugin},
        use_entry_points=False,
    )
    assert not loaded.failures, loaded.failures
    yield loaded


@pytest.fixture
def shop(store: Store) -> Store:
    """C1 bought tea online and a cup in the store; C2-C4 bought tea, cup, mug and a
    kettle together; C6 bought nothing. The kettle is sold out."""
    people = [person(i) for i in range(1, 7)]
    store.write_batch("web", Stream.CUSTOMERS, people)
    store.write_batch("pos", Stream.CUSTOMERS, [person(1, id="POS-1", consent=None)])
    web = [order("C1", 20, TEA)]
    for i in (2, 3, 4):
        web += [order(f"C{i}", 60, TEA, CUP, MUG, KETTLE), order(f"C{i}", 30, TEA)]
    store.write_batch("web", Stream.ORDERS, web)
    store.write_batch("pos", Stream.ORDERS, [order("POS-1", 10, CUP)])
    store.write_batch(
        "web",
        Stream.PRODUCTS,
        [
            product("TEA-1", "煎茶", 1200),
            product("MUG-2", "湯呑み", 2400),
            product("KETTLE-3", "急須", 5800, available=False),
        ],
    )
    refresh(store, CrmSettings(), now=NOW)
    return store


def _lines(body: str) -> list[str]:
    return body.split("\n", 1)[1].strip().splitlines()


def test_each_message_carries_the_persons_own_recommendations(
    shop: Store, host: Host, drop: Path
) -> None:
    campaign = make(
        shop,
        host,
        drop,
        segment="number_of_orders >= 1",
        variants=[Variant(name="A", subject="おすすめ", body=BODY)],
    )
    with shop.engine.begin() as conn:
        campaigns.plan(conn, campaign, messaging(drop), now=NOW, tz=TOKYO)
    result = sender(shop, host, messaging(drop)).send(campaign.name)
    assert result.sent == 4
    bodies = {m["to"]: m["body"] for m in arrived(drop)}
    # C1 bought tea and (in the store) a cup: the mug the others bought with them comes
    # with its catalogue price and link; the kettle is sold out; the cup is not offered
    # again (bought once), the tea is (a repeat product).
    c1 = _lines(bodies["p1@example.jp"])
    assert "湯呑み | 2,400 | https://tokyo-tea.jp/products/mug-2" in c1
    assert not any(line.startswith(("急須", "name of cup-9")) for line in c1)
    # Each message holds exactly what the recommenders give that person, best first.
    history = shop_history(shop.engine, SHOP, now=NOW)
    with shop.engine.connect() as conn:
        catalogue = shop_catalogue(conn, SHOP)
    for i in (1, 2, 3, 4):
        expected = for_customer(
            host, history, pid(shop, "web", f"C{i}"), limit=3, catalogue=catalogue
        )
        shown = _lines(bodies[f"p{i}@example.jp"])
        assert [line.split(" | ")[0] for line in shown] == (
            [r.name for r in expected] or ["(なし)"]
        ), shown


def test_a_template_naming_a_field_of_a_recommendation_that_does_not_exist_is_refused(
    shop: Store, host: Host, drop: Path
) -> None:
    bad = "{% for item in recommendations %}{{ item.stock }}{% endfor %}"
    with pytest.raises(TemplateError, match="stock"):
        make(shop, host, drop, variants=[Variant(name="A", subject="x", body=bad)])


def test_a_preview_shows_the_persons_recommendations(shop: Store, host: Host, drop: Path) -> None:
    campaign = make(shop, host, drop, variants=[Variant(name="A", subject="おすすめ", body=BODY)])
    one = int(pid(shop, "web", "C1"))
    _, shown = sender(shop, host, messaging(drop)).preview(campaign.name, one)
    assert "湯呑み | 2,400 |" in shown.body
