"""The storefront script in a real browser (headless Chromium): a sandbox shop's page on
another origin loads it; a prospect sees the popup on the second visit, others do not; a
click is recorded; an order placed afterwards is attributed to the variant seen."""

from __future__ import annotations

import datetime as dt
import html
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from omnicrm.app.runtime import Runtime
from omnicrm.app.webhook_app import create_app
from omnicrm.core.channels import Stream
from omnicrm.core.host import Host
from omnicrm.crm.refresh import CrmSettings, refresh
from omnicrm.engage.onsite.report import offer_report
from omnicrm.engage.onsite.tokens import customer_token
from omnicrm.engage.schema import onsite_events
from tests.support.http import serve
from tests.support.storefront import KEY, SHOP, TOKEN_SECRET, make_runtime, order, popup, seed

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"

pytestmark = pytest.mark.skipif(
    not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()),
    reason="needs Chromium and chromedriver (apt-get install chromium chromium-driver)",
)


def sandbox_shop(crm: dict[str, str]) -> Starlette:
    """A shop's own pages, as EC-CUBE renders them: the layout block with the script, and
    the signed-in customer's token made by the shop's server (here: /as/C1/...)."""

    async def page(request: Request) -> HTMLResponse:
        who = request.path_params["who"]
        token = "" if who == "guest" else customer_token(who, int(time.time()) + 600, TOKEN_SECRET)
        product = request.path_params.get("sku", "")
        return HTMLResponse(
            f"""<!doctype html><html lang="ja"><head><meta charset="utf-8">
<title>東京茶舗</title></head><body>
<h1>東京茶舗</h1>
{f'<div data-omnicrm-product="{html.escape(product)}"></div>' if product else ""}
<div data-omnicrm-recommendations></div>
<script src="{crm["url"]}/storefront/omnicrm.js" data-key="{KEY}"
        data-token="{html.escape(token)}" defer></script>
</body></html>"""
        )

    return Starlette(
        routes=[
            Route("/as/{who}/", page),
            Route("/as/{who}/products/{sku}", page),
        ]
    )


@pytest.fixture
def browser() -> Iterator[object]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


@pytest.fixture
def shop_and_crm(store_url: str) -> Iterator[tuple[str, Runtime]]:
    crm: dict[str, str] = {}
    with serve(sandbox_shop(crm)) as shop_url:
        host = Host.load()
        runtime = make_runtime(store_url, offers={"second": popup()}, domains=[shop_url], host=host)
        seed(runtime.store, dt.datetime.now(dt.UTC))
        app = create_app(runtime)
        with serve(app) as crm_url:
            crm["url"] = crm_url
            yield shop_url, runtime
        app.state.inbox.close()
        runtime.close()


def visit(driver: object, url: str, *, new_session: bool) -> str:
    """Open ``url`` (a new visit: the tab's session storage cleared first); the state
    the script ends in."""
    from selenium.webdriver.support.ui import WebDriverWait

    if new_session:
        driver.execute_script("window.sessionStorage.clear()")  # type: ignore[attr-defined]
    driver.get(url)  # type: ignore[attr-defined]
    state: str = WebDriverWait(driver, 15).until(  # type: ignore[arg-type]
        lambda d: (
            d.execute_script("return document.documentElement.dataset.omnicrmState")
            in ("ready", "failed")
            and d.execute_script("return document.documentElement.dataset.omnicrmState")
        )
    )
    return state


def forget_browser(driver: object, shop_url: str) -> None:
    """Another person at the same machine: no id, no session, no cookie."""
    driver.get(f"{shop_url}/as/guest/")  # type: ignore[attr-defined]
    driver.execute_script("localStorage.clear(); sessionStorage.clear()")  # type: ignore[attr-defined]
    driver.delete_all_cookies()  # type: ignore[attr-defined]


def popups(driver: object) -> list[object]:
    from selenium.webdriver.common.by import By

    found: list[object] = driver.find_elements(By.CSS_SELECTOR, ".omnicrm-popup")  # type: ignore[attr-defined]
    return found


def test_a_prospect_sees_the_popup_on_the_second_visit_and_converts(
    browser: object, shop_and_crm: tuple[str, Runtime]
) -> None:
    from selenium.webdriver.common.by import By

    shop_url, runtime = shop_and_crm
    driver = browser
    forget_browser(driver, shop_url)
    page = f"{shop_url}/as/C1/products/TEA-01"
    assert visit(driver, page, new_session=True) == "ready"
    assert popups(driver) == []  # the first visit
    # Recommendations drawn from the shop's catalogue, next to the product viewed.
    names = [e.text for e in driver.find_elements(By.CSS_SELECTOR, ".omnicrm-item-name")]  # type: ignore[attr-defined]
    assert "ほうじ茶 100g" in names and "湯呑み" not in names
    assert visit(driver, f"{shop_url}/as/C1/", new_session=False) == "ready"
    assert popups(driver) == []  # another page of the same visit
    assert visit(driver, f"{shop_url}/as/C1/", new_session=True) == "ready"
    shown = popups(driver)
    assert len(shown) == 1
    box = shown[0]
    variant = box.get_attribute("data-variant")  # type: ignore[attr-defined]
    assert variant in ("A", "B")
    assert "花子 様" in box.text  # type: ignore[attr-defined]
    assert ("WELCOME10" if variant == "A" else "WELCOME15") in box.text  # type: ignore[attr-defined]
    box.find_element(By.CSS_SELECTOR, ".omnicrm-cta").click()  # type: ignore[attr-defined]

    def clicks() -> list[tuple[str, str]]:
        with runtime.store.engine.connect() as conn:
            rows = conn.execute(
                select(onsite_events.c.offer, onsite_events.c.variant).where(
                    onsite_events.c.kind == "click"
                )
            )
            return [(o, v) for o, v in rows]

    deadline = time.monotonic() + 10
    while not clicks() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert clicks() == [("second", variant)]

    # Another shopper who has bought (C2), and one not signed in: no popup, ever.
    for who in ("C2", "guest"):
        forget_browser(driver, shop_url)
        for _ in range(3):
            assert visit(driver, f"{shop_url}/as/{who}/", new_session=True) == "ready"
            assert popups(driver) == [], who

    # 花子 then orders (synced from the shop like any order): her variant converted.
    now = dt.datetime.now(dt.UTC)
    runtime.store.write_batch("web", Stream.ORDERS, [order("O-C1-1", "C1", now, 4500)])
    refresh(runtime.store, CrmSettings(shop=SHOP), now=now)
    with runtime.store.engine.connect() as conn:
        found = offer_report(conn, SHOP, "second", popup(), days=7)
    by_variant = {v.variant: v for v in found.variants}
    seen = by_variant[variant]
    assert (seen.people, seen.clickers, seen.conversions, seen.revenue) == (1, 1, 1, 4500)
    other = by_variant["B" if variant == "A" else "A"]
    assert (other.people, other.conversions) == (0, 0)
