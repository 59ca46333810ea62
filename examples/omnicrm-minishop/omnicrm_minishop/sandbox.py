"""A local emulator of the MiniShop REST API, holding seeded Japanese shop data.

:class:`MiniShopServer` serves the same API a real MiniShop shop does, on 127.0.0.1 and a
free port, from a daemon thread: it is an :class:`omnicrm.testing.Emulator`. Its data
is generated with ``Faker("ja_JP")`` from a seed, so a given ``(seed, anchor)`` always
gives the same shop. Switches on the server object inject the faults a real API shows
(HTTP 500, 429 with ``Retry-After``, a truncated JSON body, a slow answer), so the
plugin's tests run against real HTTP with no mocks.

:func:`sandbox` is the factory registered on the channel type: ``omnicrm`` enters it for
the demo and the conformance kit, and it yields settings for a connection to the server.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import copy
import datetime as dt
import hmac
import json
import os
import random
import secrets
import threading
from collections import deque
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Self

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from omnicrm.errors import ConfigError
from omnicrm.testing import Emulator

if TYPE_CHECKING:
    from faker import Faker

JST = dt.timezone(dt.timedelta(hours=9), "JST")
Resource = Literal["customers", "orders"]
RESOURCES: tuple[Resource, ...] = ("customers", "orders")
MIN_CUSTOMERS = 10
MAX_CUSTOMERS = 100_000
MAX_LIMIT = 250
DEFAULT_LIMIT = 100

_Key = tuple[dt.datetime, str]
_DAY = 86_400


# --------------------------------------------------------------------------- data store


def _key(record: Mapping[str, Any]) -> _Key:
    return (dt.datetime.fromisoformat(record["updated_at"]), record["id"])


class _Table:
    """One resource's records, kept sorted by ``(updated_at, id)`` for cursor paging."""

    def __init__(self, records: list[dict[str, Any]]) -> None:
        self._by_id = {r["id"]: r for r in records}
        self._key_of = {r["id"]: _key(r) for r in records}
        self._keys = sorted(self._key_of.values())

    def __len__(self) -> int:
        return len(self._keys)

    def get(self, record_id: str) -> dict[str, Any] | None:
        return self._by_id.get(record_id)

    def put(self, record: dict[str, Any]) -> None:
        old = self._key_of.get(record["id"])
        if old is not None:
            del self._keys[bisect.bisect_left(self._keys, old)]
        key = _key(record)
        bisect.insort(self._keys, key)
        self._key_of[record["id"]] = key
        self._by_id[record["id"]] = record

    def page(
        self, since: dt.datetime | None, after: _Key | None, limit: int
    ) -> tuple[list[dict[str, Any]], _Key | None]:
        """Up to ``limit`` records at or after ``since`` and strictly after ``after``."""
        start = 0 if since is None else bisect.bisect_left(self._keys, (since, ""))
        if after is not None:
            start = max(start, bisect.bisect_right(self._keys, after))
        keys = self._keys[start : start + limit]
        more = start + limit < len(self._keys)
        return [self._by_id[k[1]] for k in keys], (keys[-1] if more and keys else None)

    def ordered(self) -> list[dict[str, Any]]:
        return [self._by_id[k[1]] for k in self._keys]

    def ids(self) -> list[str]:
        return list(self._by_id)


def _encode_token(key: _Key) -> str:
    # Opaque to clients, but just the position of the last record sent: paging from it
    # is stable while records change, since a changed record moves past every position.
    raw = json.dumps([key[0].isoformat(), key[1]]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_token(token: str) -> _Key:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        when, record_id = json.loads(raw)
        key = (dt.datetime.fromisoformat(when), str(record_id))
    except (binascii.Error, ValueError, TypeError) as exc:
        raise ValueError("page_token is not one this API issued") from exc
    if key[0].tzinfo is None:
        raise ValueError("page_token is not one this API issued")
    return key


# --------------------------------------------------------------------------- data generation

_PRODUCTS: tuple[tuple[str, int], ...] = (
    ("有機ほうじ茶 ティーバッグ", 1080),
    ("深蒸し煎茶 100g", 1620),
    ("スペシャルティコーヒー豆 200g", 2380),
    ("ドリップバッグコーヒー 10袋", 1480),
    ("今治タオル フェイスタオル", 1980),
    ("今治タオル バスタオル", 4950),
    ("注染手ぬぐい", 1650),
    ("美濃焼 マグカップ", 2860),
    ("有田焼 豆皿", 1870),
    ("南部鉄器 急須", 14300),
    ("ひのき まな板", 6380),
    ("国産はちみつ 300g", 2980),
    ("柚子ぽん酢 360ml", 864),
    ("だしパック 30包", 2160),
    ("米粉バウムクーヘン", 2592),
    ("ドライフルーツ詰め合わせ", 3240),
    ("オーガニック石けん", 1320),
    ("柚子ハンドクリーム", 1540),
    ("リネンエプロン", 6600),
    ("帆布トートバッグ", 7480),
    ("夫婦箸セット", 4400),
    ("竹の弁当箱", 4620),
    ("季節の和菓子詰め合わせ", 3780),
    ("ギフトカタログ", 10800),
)
_VARIANTS: tuple[tuple[str, float], ...] = (
    ("", 1.0),
    ("お試しサイズ", 0.6),
    ("徳用", 1.7),
    ("ギフト箱入り", 1.25),
    ("2個セット", 1.9),
)
# Prefecture, relative share of customers, range of its postcodes' first three digits,
# and some of its cities/wards: Faker picks each part alone, which gives addresses such as
# 和歌山県横浜市 that no Japanese reader would take for real.
_REGIONS: tuple[tuple[str, int, int, int, tuple[str, ...]], ...] = (
    ("東京都", 14, 100, 208, ("世田谷区", "練馬区", "大田区", "杉並区", "板橋区", "八王子市")),
    ("神奈川県", 9, 210, 259, ("横浜市港北区", "横浜市青葉区", "川崎市中原区", "藤沢市")),
    ("大阪府", 7, 530, 599, ("大阪市北区", "大阪市淀川区", "堺市北区", "豊中市", "吹田市")),
    ("愛知県", 6, 440, 498, ("名古屋市中区", "名古屋市緑区", "豊田市", "岡崎市", "一宮市")),
    ("埼玉県", 6, 330, 369, ("さいたま市浦和区", "川口市", "川越市", "所沢市", "越谷市")),
    ("千葉県", 5, 260, 299, ("千葉市中央区", "船橋市", "松戸市", "市川市", "柏市")),
    ("兵庫県", 4, 650, 679, ("神戸市中央区", "姫路市", "西宮市", "尼崎市", "明石市")),
    ("北海道", 4, 40, 99, ("札幌市中央区", "札幌市北区", "旭川市", "函館市")),
    ("福岡県", 4, 800, 839, ("福岡市中央区", "福岡市博多区", "北九州市小倉北区", "久留米市")),
    ("静岡県", 3, 410, 439, ("静岡市葵区", "浜松市中央区", "沼津市", "富士市")),
    ("京都府", 2, 600, 629, ("京都市中京区", "京都市左京区", "宇治市")),
    ("宮城県", 2, 980, 989, ("仙台市青葉区", "仙台市泉区", "石巻市")),
    ("広島県", 2, 720, 739, ("広島市中区", "福山市", "呉市")),
    ("新潟県", 2, 940, 959, ("新潟市中央区", "長岡市", "上越市")),
    ("沖縄県", 1, 900, 907, ("那覇市", "沖縄市", "浦添市")),
)
_REGION_WEIGHTS = tuple(region[1] for region in _REGIONS)
_TAGS = ("VIP", "定期便", "卸", "店舗会員", "LINE連携", "要確認")
_PAYMENT_METHODS = ("credit_card", "credit_card", "credit_card", "konbini", "cod", "bank_transfer")
# ASCII digits and hyphen -> their full-width forms (U+FF10.., U+FF0D), as an IME types them.
_FULL_WIDTH = str.maketrans({c: chr(ord(c) + 0xFEE0) for c in "0123456789-"})


@dataclass(frozen=True)
class Product:
    """A catalogue entry of the sandbox shop."""

    product_id: str
    product_code: str
    name: str
    price: int


def _catalogue(rng: random.Random) -> list[Product]:
    products: list[Product] = []
    for base, price in _PRODUCTS:
        for suffix, factor in [_VARIANTS[0], *rng.sample(_VARIANTS[1:], 2)]:
            n = len(products) + 1
            yen = min(20_000, max(500, round(price * factor / 10) * 10))
            name = f"{base} {suffix}" if suffix else base
            products.append(Product(f"p_{n:05d}", f"MS-{n:04d}", name, yen))
    return products


def _iso(when: int | dt.datetime) -> str:
    if isinstance(when, int):
        when = dt.datetime.fromtimestamp(when, JST)
    return when.astimezone(JST).isoformat(timespec="milliseconds")


class _Generator:
    """Builds customers and orders; also used by the live thread to make new ones."""

    def __init__(self, seed: int) -> None:
        from faker import Faker  # only the sandbox needs Faker: keep plugin loading cheap

        self.fake: Faker = Faker("ja_JP")
        self.fake.seed_instance(seed)
        self.rng: random.Random = self.fake.random
        self.products = _catalogue(self.rng)
        # A few products sell far more than the rest, as in any shop.
        ranks = list(range(1, len(self.products) + 1))
        self.rng.shuffle(ranks)
        self._cum_weights: list[float] = []
        total = 0.0
        for rank in ranks:
            total += 1.0 / rank**0.9
            self._cum_weights.append(total)
        self._emails: set[str] = set()

    # -- customers

    def _tel(self) -> str | None:
        rng = self.rng
        roll = rng.random()
        if roll < 0.05:
            return None
        if roll < 0.12:  # a landline
            area = rng.choice(("03", "06", "052", "011", "092"))
            rest = 8 - len(area) + 2
            local = f"{rng.randrange(10 ** (rest - 4), 10**rest):0{rest}d}"
            return f"{area}-{local[:-4]}-{local[-4:]}"
        digits = f"{rng.choice(('090', '080', '070'))}{rng.randrange(10**8):08d}"
        hyphenated = f"{digits[:3]}-{digits[3:7]}-{digits[7:]}"
        if roll < 0.55:
            return hyphenated
        if roll < 0.9:
            return digits
        # Typed on a Japanese IME: full-width digits, sometimes with full-width hyphens.
        return (hyphenated if roll < 0.95 else digits).translate(_FULL_WIDTH)

    def _email(self, given_roman: str, family_roman: str) -> str | None:
        rng = self.rng
        if rng.random() < 0.02:
            return None
        sep = rng.choice((".", "_", "", ""))
        while True:
            number = str(rng.randint(1, 9999)) if rng.random() < 0.6 else ""
            local = f"{given_roman}{sep}{family_roman}{number}".lower()
            email = f"{local}@{self.fake.free_email_domain()}"
            if email not in self._emails:
                self._emails.add(email)
                return email

    def customer(self, number: int, created: int, end: int, *, legacy: bool) -> dict[str, Any]:
        """A customer who registered at ``created``, with changes up to ``end``."""
        rng, fake = self.rng, self.fake
        roll = rng.random()
        sex = "female" if roll < 0.48 else "male" if roll < 0.82 else None
        family = fake.last_name_pair()
        given = (
            fake.first_name_female_pair()
            if sex == "female"
            else fake.first_name_male_pair()
            if sex == "male"
            else fake.first_name_pair()
        )
        no_kana = rng.random() < 0.05
        birthday = None
        if rng.random() < 0.7:
            born = dt.date(1950, 1, 1) + dt.timedelta(days=rng.randrange(56 * 365))
            birthday = born.isoformat()
        if rng.random() < 0.03:  # signed up with a social login, never gave an address
            zip_code = pref = addr1 = addr2 = ""
        else:
            pref, _, zip_low, zip_high, cities = rng.choices(_REGIONS, _REGION_WEIGHTS)[0]
            zip_code = f"{rng.randint(zip_low, zip_high):03d}-{rng.randrange(10_000):04d}"
            addr1 = f"{rng.choice(cities)}{fake.town()}"
            addr2 = f"{rng.randint(1, 9)}-{rng.randint(1, 27)}-{rng.randint(1, 20)}"
            if rng.random() < 0.35:
                room = f"{rng.randint(1, 12)}{rng.randint(1, 9):02d}"
                addr2 += f" {fake.town()}{fake.building_name()} {room}号室"
        magazine = rng.random() < 0.55
        updated = created
        magazine_at: int | None = created
        if legacy:
            magazine_at = None  # the old system never recorded when consent was given
        elif rng.random() < 0.12:
            magazine = not magazine
            magazine_at = rng.randint(created, end)
            updated = magazine_at
        if rng.random() < 0.3:
            updated = max(updated, rng.randint(created, end))
        tags = [tag for tag in _TAGS if rng.random() < 0.04]
        return {
            "id": f"c_{number:06d}",
            "last_name": family[0],
            "first_name": given[0],
            "last_name_kana": "" if no_kana else family[1],
            "first_name_kana": "" if no_kana else given[1],
            "email": self._email(given[2], family[2]),
            "tel": self._tel(),
            "birthday": birthday,
            "sex": sex,
            "zip": zip_code,
            "pref": pref,
            "addr1": addr1,
            "addr2": addr2,
            "company_name": fake.company() if rng.random() < 0.05 else "",
            "member_no": f"29{rng.randrange(10**11):011d}" if rng.random() < 0.7 else None,
            "mail_magazine": magazine,
            "mail_magazine_updated_at": None if magazine_at is None else _iso(magazine_at),
            "tags": tags,
            "created_at": _iso(created),
            "updated_at": _iso(updated),
        }

    # -- orders

    def order(self, number: int, customer_id: str | None, ordered: int, end: int) -> dict[str, Any]:
        """Order ``number`` placed at ``ordered``, in the state it reached by ``end``."""
        rng = self.rng
        n_lines = rng.choices((1, 2, 3, 4), weights=(55, 28, 12, 5))[0]
        chosen = rng.choices(self.products, cum_weights=self._cum_weights, k=n_lines)
        items: list[dict[str, Any]] = []
        for product in dict.fromkeys(chosen):  # one line per product
            quantity = rng.choices((1, 2, 3), weights=(80, 15, 5))[0]
            discount = product.price * quantity // 10 if rng.random() < 0.08 else 0
            items.append(
                {
                    "product_code": product.product_code,
                    "product_id": product.product_id,
                    "product_name": product.name,
                    "price": product.price,
                    "quantity": quantity,
                    "discount": discount,
                }
            )
        # Prices include consumption tax, as Japanese shops show them; ``tax`` is the
        # tax contained in the payment, and line discounts are already off ``subtotal``.
        subtotal = sum(i["price"] * i["quantity"] - i["discount"] for i in items)
        discount = 0
        if rng.random() < 0.15:  # a coupon or points
            discount = min(rng.choice((100, 300, 500, 1000)), subtotal // 2)
        delivery_fee = 0 if subtotal >= 5000 else 660
        payment_total = subtotal - discount + delivery_fee

        age = end - ordered
        updated = ordered
        cancelled: int | None = None
        if age < _DAY:
            status = rng.choice(("new", "paid"))
        elif age < 3 * _DAY:
            status = rng.choice(("paid", "shipped"))
        else:
            status = "shipped"
        roll = rng.random()
        if roll < 0.03:
            status = "cancelled"
            cancelled = min(end, ordered + rng.randint(600, 2 * _DAY))
            updated = cancelled
        elif status == "paid":
            updated = min(end, ordered + rng.randint(60, 3600))
        elif status == "shipped":
            updated = min(end, ordered + rng.randint(_DAY // 2, 3 * _DAY))
            if roll < 0.04 and age > 20 * _DAY:
                status = "returned"
                updated = ordered + rng.randint(7 * _DAY, 20 * _DAY)
        return {
            "id": f"o_{number:07d}",
            "order_no": 100_000 + number,
            "customer_id": customer_id,
            "status": status,
            "payment_method": rng.choice(_PAYMENT_METHODS),
            "ordered_at": _iso(ordered),
            "cancelled_at": None if cancelled is None else _iso(cancelled),
            "updated_at": _iso(updated),
            "payment_total": payment_total,
            "subtotal": subtotal,
            "discount": discount,
            "delivery_fee": delivery_fee,
            "tax": payment_total * 10 // 110,
            "currency": "JPY",
            "items": items,
        }

    def shop(self, n_customers: int, end: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """A shop's first three years: customers, and their orders up to ``end``."""
        rng = self.rng
        start = end - 3 * 365 * _DAY
        # The first tenth came over in one CSV import when the shop moved to MiniShop:
        # they share one timestamp, which is what cursor paging has to get right.
        n_legacy = n_customers // 10
        created = [start] * n_legacy + sorted(
            start + int((end - start) * rng.random() ** 0.7)  # a growing shop
            for _ in range(n_customers - n_legacy)
        )
        customers = []
        placed: list[tuple[int, str | None]] = []
        for i, when in enumerate(created):
            customer = self.customer(i + 1, when, end, legacy=i < n_legacy)
            customers.append(customer)
            if rng.random() >= 0.78:
                continue  # registered, never bought
            # Most customers buy once; a long tail comes back again and again.
            count = min(int(rng.paretovariate(1.5)), 40)
            first = when + rng.randint(0, 600) if rng.random() < 0.85 else rng.randint(when, end)
            times = [first, *(rng.randint(first, end) for _ in range(count - 1))]
            placed.extend((t, customer["id"]) for t in times)
        placed.extend((rng.randint(start, end), None) for _ in range(len(placed) // 20))
        placed.sort(key=lambda p: p[0])
        orders = [self.order(n + 1, cid, when, end) for n, (when, cid) in enumerate(placed)]
        return customers, orders


# --------------------------------------------------------------------------- HTTP server


@dataclass(frozen=True)
class RequestRecord:
    """One API request the sandbox answered (headers are not kept: they hold the key)."""

    path: str
    params: Mapping[str, str]
    status: int


class MiniShopServer(Emulator):
    """The MiniShop API on 127.0.0.1, serving a seeded shop from a daemon thread.

    ``customers`` (10..100000) and ``seed`` decide the data; ``anchor`` is when its history
    ends (default: the start of today, JST). With ``live=True`` a thread changes the shop
    every ``live_interval`` seconds: a new order, a customer's update, a new customer.
    Use it as a context manager, or call :meth:`start` and :meth:`stop`. The fault
    switches (:meth:`fail_next`, :meth:`rate_limit_next`, :meth:`delay_next`,
    :meth:`malform_next`) come from :class:`omnicrm.testing.Emulator` and apply to ``/api/``.
    """

    name = "minishop-sandbox"

    def __init__(
        self,
        *,
        customers: int = 2000,
        seed: int = 0,
        api_key: str | None = None,
        anchor: dt.datetime | None = None,
        live: bool = False,
        live_interval: float = 3.0,
    ) -> None:
        if not MIN_CUSTOMERS <= customers <= MAX_CUSTOMERS:
            raise ValueError(f"customers must be {MIN_CUSTOMERS}..{MAX_CUSTOMERS}, not {customers}")
        if anchor is None:
            anchor = dt.datetime.now(JST).replace(hour=0, minute=0, second=0, microsecond=0)
        elif anchor.tzinfo is None:
            raise ValueError("anchor must be timezone-aware")
        self.api_key = api_key or f"msk_{secrets.token_urlsafe(24)}"
        self.live = live
        self.live_interval = live_interval
        self._gen = _Generator(seed)
        customers_data, orders_data = self._gen.shop(customers, int(anchor.timestamp()))
        self._tables: dict[Resource, _Table] = {
            "customers": _Table(customers_data),
            "orders": _Table(orders_data),
        }
        self._next_number = {"customers": len(customers_data), "orders": len(orders_data)}
        self._latest = max(
            [dt.datetime.fromisoformat(r["updated_at"]) for r in customers_data + orders_data]
            + [anchor]
        )
        self._lock = threading.RLock()
        self.requests: deque[RequestRecord] = deque(maxlen=10_000)
        self._live_thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self.app = Starlette(routes=[Route("/{path:path}", self._handle, methods=["GET"])])
        super().__init__()

    # -- lifecycle

    def start(self) -> Self:
        """Start serving (and, if ``live``, changing the shop). Returns ``self``."""
        if self.running:
            return self
        super().start()
        self._stopping.clear()
        if self.live:
            self._live_thread = threading.Thread(
                target=self._live_loop, name="minishop-live", daemon=True
            )
            self._live_thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and changing; the data stays readable through the methods."""
        self._stopping.set()
        super().stop()
        if self._live_thread is not None:
            self._live_thread.join(timeout=5)
            self._live_thread = None

    @property
    def base_url(self) -> str:
        """The URL to put in a connection's ``base_url`` (the server must be started)."""
        if not self.running:
            raise RuntimeError("the sandbox is not running")
        return self.url

    def settings(self) -> dict[str, Any]:
        """Settings for a ``minishop`` connection to this server."""
        return {"base_url": self.base_url, "api_key": self.api_key}

    # -- faults

    def throttle_next(self, count: int = 1, *, retry_after: int | str = 1) -> None:
        """Answer the next ``count`` API requests with 429 and this ``Retry-After``."""
        self.rate_limit_next(count, retry_after=retry_after)

    def applies_faults(self, path: str) -> bool:
        return path.startswith("/api/")

    def fault_response(self, request: Request, status: int, headers: Mapping[str, str]) -> Response:
        """MiniShop's error envelope; the request is recorded like any other."""
        code, message = (
            ("rate_limited", "Too many requests")
            if status == 429
            else ("internal_error", "Internal Server Error")
        )
        self._record(request, status)
        return _error(status, code, message, headers)

    # -- data

    def records(self, resource: Resource) -> list[dict[str, Any]]:
        """Copies of every record, in API order (ascending ``updated_at``, then ``id``)."""
        with self._lock:
            return copy.deepcopy(self._tables[resource].ordered())

    def record(self, resource: Resource, record_id: str) -> dict[str, Any]:
        """A copy of one record; KeyError if there is none."""
        with self._lock:
            found = self._tables[resource].get(record_id)
            if found is None:
                raise KeyError(record_id)
            return copy.deepcopy(found)

    @property
    def products(self) -> list[Product]:
        """The shop's catalogue."""
        return list(self._gen.products)

    def _now(self) -> dt.datetime:
        # A monotonic millisecond clock, as a database sequence gives: every change sorts
        # after every record there is, so also after any page token a client holds. With a
        # clock that could repeat, a record changed in the same tick as a token's position
        # but with a lower id would sort behind the token and be skipped by that listing.
        now = dt.datetime.now(JST)
        now = now.replace(microsecond=now.microsecond // 1000 * 1000)
        if now <= self._latest:
            now = self._latest + dt.timedelta(milliseconds=1)
        self._latest = now
        return now

    def update(self, resource: Resource, record_id: str, **changes: Any) -> dict[str, Any]:
        """Change fields of a record as the shop's admin would; ``updated_at`` becomes now.

        Any value is accepted, which is how the tests feed the plugin a broken record.
        """
        with self._lock:
            current = self._tables[resource].get(record_id)
            if current is None:
                raise KeyError(record_id)
            record = {**copy.deepcopy(current), **changes}
            if "updated_at" not in changes:
                record["updated_at"] = _iso(self._now())
            self._tables[resource].put(record)
            return copy.deepcopy(record)

    def add_customer(self) -> dict[str, Any]:
        """Register a new customer now."""
        with self._lock:
            now = self._now()
            ts = int(now.timestamp())
            self._next_number["customers"] += 1
            record = self._gen.customer(self._next_number["customers"], ts, ts, legacy=False)
            stamp = _iso(now)
            record.update(created_at=stamp, updated_at=stamp, mail_magazine_updated_at=stamp)
            self._tables["customers"].put(record)
            return copy.deepcopy(record)

    def add_order(self, customer_id: str | None = None) -> dict[str, Any]:
        """Place a new order now, by ``customer_id`` (default: a random customer)."""
        with self._lock:
            if customer_id is None:
                customer_id = self._gen.rng.choice(self._tables["customers"].ids())
            now = self._now()
            ts = int(now.timestamp())
            self._next_number["orders"] += 1
            record = self._gen.order(self._next_number["orders"], customer_id, ts, ts)
            stamp = _iso(now)
            record.update(ordered_at=stamp, updated_at=stamp)
            if record["cancelled_at"] is not None:
                record["cancelled_at"] = stamp
            self._tables["orders"].put(record)
            return copy.deepcopy(record)

    def tick(self) -> tuple[Resource, str]:
        """Make one change, as the live thread does; returns what changed."""
        with self._lock:
            rng = self._gen.rng
            roll = rng.random()
            if roll < 0.5:
                return "orders", self.add_order()["id"]
            if roll < 0.65:
                return "customers", self.add_customer()["id"]
            customer_id = rng.choice(self._tables["customers"].ids())
            current = self._tables["customers"].get(customer_id)
            assert current is not None
            if rng.random() < 0.5:
                magazine = not current["mail_magazine"]
                now = _iso(self._now())
                changes = {"mail_magazine": magazine, "mail_magazine_updated_at": now}
            else:
                changes = {"tags": sorted({*current["tags"], rng.choice(_TAGS)})}
            return "customers", self.update("customers", customer_id, **changes)["id"]

    def _live_loop(self) -> None:
        while not self._stopping.wait(self.live_interval):
            self.tick()

    # -- HTTP

    def _record(self, request: Request, status: int) -> None:
        self.requests.append(RequestRecord(request.url.path, dict(request.query_params), status))

    async def _handle(self, request: Request) -> Response:
        path = request.url.path
        if not path.startswith("/api/"):
            page = b"<!doctype html><title>404 Not Found</title><h1>Not Found</h1>"
            return Response(page, 404, media_type="text/html; charset=utf-8")
        answer = self._answer(request, path)
        self._record(request, answer.status_code)
        return answer

    def _answer(self, request: Request, path: str) -> Response:
        key = request.headers.get("X-Api-Key") or ""
        if not hmac.compare_digest(key.encode(), self.api_key.encode()):
            return _error(401, "unauthorized", "Missing or invalid X-Api-Key")
        resource = next((r for r in RESOURCES if path == f"/api/v1/{r}"), None)
        if resource is None:
            return _error(404, "not_found", f"No such endpoint: {path}")
        try:
            since, after, limit = _parse_list_params(request.query_params)
        except _BadParam as exc:
            return _error(400, "invalid_parameter", str(exc), parameter=exc.name)
        with self._lock:
            records, last = self._tables[resource].page(since, after, limit)
            payload = {
                resource: records,
                "next_page_token": None if last is None else _encode_token(last),
            }
            body = json.dumps(payload, ensure_ascii=False).encode()
        return Response(body, 200, media_type=_JSON)


_JSON = "application/json; charset=utf-8"


def _error(
    status: int,
    code: str,
    message: str,
    headers: Mapping[str, str] | None = None,
    parameter: str | None = None,
) -> Response:
    error: dict[str, str] = {"code": code, "message": message}
    if parameter is not None:
        error["parameter"] = parameter
    body = json.dumps({"error": error}).encode()
    return Response(body, status, headers=dict(headers or {}), media_type=_JSON)


class _BadParam(ValueError):
    def __init__(self, name: str, message: str) -> None:
        super().__init__(message)
        self.name = name


def _parse_list_params(params: Mapping[str, str]) -> tuple[dt.datetime | None, _Key | None, int]:
    since = None
    if "updated_since" in params:
        try:
            since = dt.datetime.fromisoformat(params["updated_since"])
        except ValueError:
            since = None
        if since is None or since.tzinfo is None:
            raise _BadParam(
                "updated_since",
                "updated_since must be ISO 8601 with a UTC offset, e.g. "
                "2024-05-01T00:00:00+09:00 (URL-encode the '+' as %2B)",
            )
    after = None
    if "page_token" in params:
        try:
            after = _decode_token(params["page_token"])
        except ValueError as exc:
            raise _BadParam("page_token", str(exc)) from None
    raw_limit = params.get("limit", str(DEFAULT_LIMIT))
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_LIMIT:
        raise _BadParam("limit", f"limit must be an integer from 1 to {MAX_LIMIT}")
    return since, after, int(raw_limit)


# --------------------------------------------------------------------------- the factory


def _env_number(name: str, default: int, low: float, high: float, kind: type[float] = int) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        value = None
    if value is None or not low <= value <= high:
        what = "an integer" if kind is int else "a number"
        raise ConfigError(f"must be {what} from {low} to {high}, not {raw!r}", key=name)
    return value


@contextmanager
def sandbox() -> Iterator[dict[str, Any]]:
    """Run a MiniShop sandbox; yields the settings of a connection to it.

    Sized by ``MINISHOP_CUSTOMERS`` (default 2000) and seeded by ``MINISHOP_SEED``
    (default 0). It is live (changes every ``MINISHOP_LIVE_INTERVAL`` seconds, default 3)
    unless ``MINISHOP_LIVE=0``, so a scheduled sync in the demo has something to find.
    """
    customers = int(_env_number("MINISHOP_CUSTOMERS", 2000, MIN_CUSTOMERS, MAX_CUSTOMERS))
    seed = int(_env_number("MINISHOP_SEED", 0, 0, 2**31))
    live = os.environ.get("MINISHOP_LIVE", "1").strip().lower() not in {"0", "false", "no", "off"}
    interval = _env_number("MINISHOP_LIVE_INTERVAL", 3, 0.01, 3600, float)
    with MiniShopServer(customers=customers, seed=seed, live=live, live_interval=interval) as shop:
        yield shop.settings()
