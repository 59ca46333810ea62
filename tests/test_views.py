"""The profile view is read within one shop: another shop's profile is not shown."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from rich.console import Console

from omnicrm.core.store import Store
from omnicrm.crm.points import PointsSettings
from omnicrm.errors import DataError
from omnicrm.views import ProfileView, load_profile_view, profile_shop, render_profile_view
from tests.crm.analytics.shop import add_profile

NOW = dt.datetime(2024, 9, 15, 3, tzinfo=dt.UTC)
JST = dt.timezone(dt.timedelta(hours=9))


@pytest.fixture
def shops(store_url: str) -> Iterator[Store]:
    opened = Store.open(store_url, shops={"tea-web": "tea", "sake-web": "sake"})
    yield opened
    opened.close()


def test_a_profile_is_shown_only_in_its_shop(shops: Store) -> None:
    person = {"email": "hanako@example.jp", "family_name": "山田", "given_name": "花子"}
    with shops.engine.begin() as conn:
        spent = {"tea": 4200.0, "sake": 12.5}
        tea, sake = (
            add_profile(
                conn,
                "hanako",
                connection=f"{shop}-web",
                shop=shop,
                number_of_orders=1,
                amount_spent=spent[shop],
                **person,
            )
            for shop in ("tea", "sake")
        )
    with shops.engine.connect() as conn:
        assert (profile_shop(conn, tea), profile_shop(conn, sake)) == ("tea", "sake")
        assert profile_shop(conn, sake + 100) is None
        # The same person, but sake's profile: tea does not show it, even by its id.
        with pytest.raises(DataError, match=f"no profile {sake} in shop 'tea'"):
            load_profile_view(conn, sake, NOW, PointsSettings(), shop="tea")
        with pytest.raises(DataError, match=f"no profile {sake + 100}"):
            load_profile_view(conn, sake + 100, NOW, PointsSettings(), shop="tea")
        mine = load_profile_view(conn, sake, NOW, PointsSettings(), shop="sake", currency="USD")
        yen = load_profile_view(conn, tea, NOW, PointsSettings(), shop="tea")
    assert (mine.profile.id, mine.shop, mine.currency) == (sake, "sake", "USD")

    def text(view: ProfileView) -> str:
        console = Console(width=100, record=True)
        console.print(render_profile_view(view, NOW.date(), JST))
        return console.export_text()

    assert "1 for 12.50 USD" in text(mine)
    assert "1 for ¥4,200" in text(yen)
