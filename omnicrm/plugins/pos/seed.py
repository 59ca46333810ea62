"""Seeded Japanese store data that any POS emulator renders in its platform's shape.

:func:`generate` builds, from a seed, a chain of two stores (渋谷店 and 梅田店) with
their terminals, a product list (the EC shop's teas and goods plus store-only items),
members (会員) and a year of sales. Everything is plain dataclasses; the Smaregi and
Square sandboxes turn them into their own JSON.

What makes it real work for the CRM:

* baskets of realistic size (most one or two items, a tail up to eight), prices in yen
  tax included, 8 % (food) or 10 % (goods) consumption tax;
* returns inside a sale (a returned item reduces the receipt), sales cancelled at the
  register, and offline terminals that upload a sale hours or days after it was made;
* points: earned per 100 yen, sometimes spent, the balance after each sale kept;
* members merged into another at the register (a lost card, a second sign-up): the
  merged record keeps its code with status ``merged`` and the survivor's code;
* a share of members are customers of the EC sandbox shop
  (:mod:`omnicrm.plugins.shopify.sandbox.data`) written the way a register writes them:
  full-width digits, hyphens, kana only, a landline at one and a mobile at the other.

The same arguments give the same data, bit for bit; ``end`` fixes the calendar.
"""

from __future__ import annotations

import bisect
import datetime as dt
import importlib
import itertools
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import jaconv

if TYPE_CHECKING:
    from types import ModuleType

EC_SANDBOX = "omnicrm.plugins.shopify.sandbox"
"""The EC sandbox whose customers a share of the members are, and whose products the
stores sell too."""
JST = dt.timezone(dt.timedelta(hours=9), "JST")
OPEN_HOUR, CLOSE_HOUR = 10, 21
"""Both stores open 10:00 to 21:00 JST."""
DAYS = 365
"""The history: a year of sales up to ``end``."""
POINT_YEN = 100
"""One point per 100 yen paid (the tax-included total, less points spent)."""


@dataclass(frozen=True, slots=True)
class Store:
    """A physical store (店舗) and its registers."""

    id: int
    code: str
    name: str
    zip: str
    prefecture: str
    address: str
    phone: str
    terminals: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Product:
    """A product sold at the register; ``price`` is yen, tax included."""

    id: int
    code: str
    name: str
    category: str
    price: int
    tax_rate: int
    """Consumption tax in percent: 8 for food and drink, 10 for goods."""


@dataclass(frozen=True, slots=True)
class Line:
    """One receipt line; a returned line (``returned``) is subtracted from the sale."""

    product: Product
    quantity: int
    unit_price: int
    discount: int = 0
    """Yen off the line (a register discount), already in ``amount``."""
    returned: bool = False

    @property
    def amount(self) -> int:
        """The line's yen, tax included: negative for a returned item."""
        value = self.unit_price * self.quantity - self.discount
        return -value if self.returned else value


@dataclass(slots=True)
class Member:
    """A store member (会員) as the register keeps them."""

    index: int
    code: str
    store_id: int
    """The store where the member signed up."""
    last_name: str
    first_name: str
    last_kana: str
    first_kana: str
    sex: int
    """0 unknown, 1 male, 2 female (the register's codes)."""
    birth_date: dt.date | None
    phone: str | None
    """The landline or the number the member gave first, as typed at the register."""
    mobile: str | None
    email: str | None
    zip: str | None
    prefecture: str | None
    address: str | None
    joined: dt.datetime
    updated: dt.datetime
    points: int = 0
    """The point balance at ``end`` (for a merged member, 0: it moved to the survivor)."""
    status: str = "active"
    """``active``, ``merged`` (into :attr:`merged_into`) or ``withdrawn``."""
    merged_into: str | None = None
    merged_at: dt.datetime | None = None
    ec_customer: int | None = None
    """The index of the same person among the EC sandbox shop's customers, if any."""


@dataclass(slots=True)
class Sale:
    """A receipt: a sale at a register, possibly with returned items."""

    number: int
    """1-based, in order of the sale time; the platforms derive their ids from it."""
    store: Store
    terminal: int
    member: Member | None
    sold_at: dt.datetime
    """The terminal's clock when the sale was made."""
    received_at: dt.datetime
    """When the platform received it: seconds later, or hours to days for an offline
    terminal (:attr:`offline`)."""
    lines: tuple[Line, ...]
    offline: bool = False
    cancelled: bool = False
    """Voided at the register (取消): not a purchase."""
    cancelled_at: dt.datetime | None = None
    points_spent: int = 0
    points_earned: int = 0
    points_after: int | None = None
    """The member's balance after this sale (None without a member)."""

    @property
    def subtotal(self) -> int:
        """Yen of the lines, tax included, returns subtracted."""
        return sum(line.amount for line in self.lines)

    @property
    def total(self) -> int:
        """Yen paid: the subtotal less the points spent (a point is one yen)."""
        return self.subtotal - self.points_spent

    @property
    def tax(self) -> int:
        """The consumption tax inside :attr:`subtotal` (rounded down per rate, as
        registers do)."""
        by_rate: dict[int, int] = {}
        for line in self.lines:
            by_rate[line.product.tax_rate] = by_rate.get(line.product.tax_rate, 0) + line.amount
        return sum(amount * rate // (100 + rate) for rate, amount in by_rate.items())


@dataclass(slots=True)
class StoreData:
    """The generated chain: stores, products, members and sales ascending by sale time."""

    seed: int
    end: dt.datetime
    stores: tuple[Store, ...]
    products: tuple[Product, ...]
    members: list[Member]
    sales: list[Sale]
    members_by_code: dict[str, Member] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.members_by_code = {m.code: m for m in self.members}

    def details(self) -> int:
        """How many receipt lines the sales hold."""
        return sum(len(sale.lines) for sale in self.sales)


STORES: tuple[Store, ...] = (
    Store(1, "0001", "渋谷店", "150-0041", "東京都", "渋谷区神南1-12-3", "03-5456-7801", (1, 2, 3)),
    Store(2, "0002", "梅田店", "530-0017", "大阪府", "大阪市北区角田町8-7", "06-6312-4410", (1, 2)),
)
_STORE_WEIGHTS = (0.62, 0.38)

# Sold only at the register: bags, gift wrapping, a tea served in the store.
_STORE_ONLY = (
    ("BAG-S", "紙袋(小)", "資材", 20, 10),
    ("BAG-L", "紙袋(大)", "資材", 50, 10),
    ("WRAP", "ギフト包装", "サービス", 330, 10),
    ("CAFE-01", "店内 抹茶ラテ", "喫茶", 580, 10),
    ("CAFE-02", "店内 煎茶と和菓子セット", "喫茶", 880, 10),
)
_FOOD = ("TEA", "MAT", "HOJ", "WKC", "GYO", "GEN", "KBN", "MZD", "WAG", "TRN")

# Items per receipt: most buy one or two things, a tail buys for a gift round.
_BASKET = (1, 2, 3, 4, 5, 6, 7, 8)
_BASKET_WEIGHTS = (45, 27, 13, 7, 4, 2, 1, 1)
_QUANTITY_WEIGHTS = (85, 11, 3, 1)


def _ec_sandbox(module: str) -> ModuleType:
    """A module of the EC sandbox (the Shopify plugin's): its people and catalogue.

    Loaded by name at run time, not imported: plugins share no code, and the seed needs
    the sandbox's data (the same people, the same products), not its API. The Shopify
    plugin is built in, so it is always there.
    """
    return importlib.import_module(f"{EC_SANDBOX}.{module}")


def products(seed: int) -> tuple[Product, ...]:
    """The store's products: the EC shop's catalogue and the store-only items."""
    items = [
        Product(
            id=8000 + n,
            code=variant.sku,
            name=f"{variant.title} {variant.variant_title}",
            category="茶葉"
            if variant.sku[:3] in _FOOD[:8]
            else "菓子"
            if variant.sku[:3] in _FOOD
            else "雑貨",
            price=variant.price,
            tax_rate=8 if variant.sku[:3] in _FOOD else 10,
        )
        for n, variant in enumerate(_ec_sandbox("catalog").catalogue(seed), start=1)
    ]
    base = 9000
    for n, (code, name, category, price, rate) in enumerate(_STORE_ONLY, start=1):
        food = category == "喫茶"  # eaten in the store: the standard rate, not the reduced
        items.append(Product(base + n, code, name, category, price, 10 if food else rate))
    return tuple(items)


def _domestic(e164: str) -> str:
    """``+819012345678`` as written in Japan: ``09012345678``."""
    return "0" + e164.removeprefix("+81")


def _hyphenate(number: str) -> str:
    """A domestic number with the usual hyphens (mobile 3-4-4, Tokyo/Osaka 2-4-4,
    other landlines 3-3-4)."""
    if number[:3] in ("070", "080", "090"):
        return f"{number[:3]}-{number[3:7]}-{number[7:]}"
    if number[:2] in ("03", "06"):
        return f"{number[:2]}-{number[2:6]}-{number[6:]}"
    return f"{number[:3]}-{number[3:6]}-{number[6:]}"


def _as_typed(rng: random.Random, number: str) -> str:
    """A domestic number the way staff type it: hyphens, full-width digits, or plain."""
    style = rng.random()
    if style < 0.45:
        return _hyphenate(number)
    if style < 0.7:
        return jaconv.h2z(
            _hyphenate(number) if rng.random() < 0.5 else number, digit=True, ascii=True
        )
    return number


def _landline(rng: random.Random, index: int) -> str:
    area = rng.choice(("3", "6", "45", "52", "48", "78"))
    rest = 8 - len(area)
    return f"0{area}{rng.randint(2, 9)}{(index * 7_919 + 4_321) % 10**rest:0{rest}d}"


def _mobile(rng: random.Random, index: int) -> str:
    prefix = rng.choice(("70", "80", "90"))
    return f"0{prefix}{rng.randint(1, 9)}{(index * 104_729 + 765_432) % 10**7:07d}"


def _birth_date(rng: random.Random, end: dt.datetime) -> dt.date | None:
    if rng.random() < 0.25:  # left blank on the form
        return None
    age_days = int(365.25 * rng.triangular(18, 80, 38))
    return end.date() - dt.timedelta(days=age_days)


def _ec_people(ec_seed: int, ec_customers: int, indexes: list[int]) -> dict[int, dict[str, Any]]:
    """The EC sandbox's customers of ``indexes``, as its Admin API shows them."""
    # Persons depend on (seed, index) only; ``end`` just has to be a valid calendar.
    shop = _ec_sandbox("data").ShopData(
        ec_customers, ec_seed, end=dt.datetime(2026, 1, 1, tzinfo=dt.UTC), background=False
    )
    return {c: shop.customer(c) for c in indexes}


def _female_names() -> frozenset[str]:
    from faker.providers.person.ja_JP import Provider as Person

    return frozenset(kanji for kanji, _, _ in Person.first_name_female_pairs)


def _shared_member(
    rng: random.Random, index: int, person: dict[str, Any], females: frozenset[str]
) -> dict[str, Any]:
    """The fields of an EC customer who signed up at the register, as typed there."""
    last_kana, first_kana = (jaconv.hira2kata(str(k)) for k in person["_kana"])
    last, first = str(person["lastName"]), str(person["firstName"])
    if rng.random() < 0.3:  # the register took the reading only
        last, first = last_kana, first_kana
        if rng.random() < 0.5:  # and an older register in half-width kana
            last, first = jaconv.z2h(last, kana=True), jaconv.z2h(first, kana=True)
    ec_phone = person["phone"]
    phone = mobile = None
    if isinstance(ec_phone, str):
        number = _domestic(ec_phone)
        is_mobile = number[:3] in ("070", "080", "090")
        if rng.random() < 0.35:  # a landline at one and a mobile at the other
            if is_mobile:
                phone = _as_typed(rng, _landline(rng, index))
            else:
                mobile = _as_typed(rng, _mobile(rng, index))
        elif is_mobile:
            mobile = _as_typed(rng, number)
        else:
            phone = _as_typed(rng, number)
    else:
        mobile = _as_typed(rng, _mobile(rng, index))
    email = person["email"]
    if not isinstance(email, str) or rng.random() < 0.3:
        email = None
    elif rng.random() < 0.1:
        local, _, domain = email.partition("@")
        email = f"{local.upper()}@{domain}"
    zip_code = prefecture = address = None
    ec_address = person["defaultAddress"]
    if isinstance(ec_address, dict) and rng.random() < 0.85:
        zip_code = str(ec_address["zip"])
        if rng.random() < 0.4:
            zip_code = zip_code.replace("-", "")
        elif rng.random() < 0.3:
            zip_code = jaconv.h2z(zip_code, digit=True, ascii=True)
        prefecture = str(ec_address["province"])
        street = f"{ec_address['city']}{ec_address['address1']}"
        if rng.random() < 0.4:
            street = jaconv.h2z(street, digit=True, ascii=True)
        building = ec_address.get("address2")
        address = f"{street} {building}" if building and rng.random() < 0.7 else street
    return {
        "last_name": last,
        "first_name": first,
        "last_kana": last_kana,
        "first_kana": first_kana,
        "sex": 2 if person["firstName"] in females else 1,
        "phone": phone,
        "mobile": mobile,
        "email": email,
        "zip": zip_code,
        "prefecture": prefecture,
        "address": address,
    }


def _store_member(
    rng: random.Random, index: int, store: Store, pools: Any, females: frozenset[str]
) -> dict[str, Any]:
    """A member who shops only in the store: registers collect little beyond a phone."""
    last, last_kana, last_roman = rng.choice(pools.last_names)
    first, first_kana, first_roman = rng.choice(pools.first_names)
    mobile = _as_typed(rng, _mobile(rng, 1_000_000 + index)) if rng.random() < 0.85 else None
    phone = _as_typed(rng, _landline(rng, 1_000_000 + index)) if rng.random() < 0.2 else None
    email = None
    if rng.random() < 0.45:
        domain = rng.choice(("gmail.com", "yahoo.co.jp", "icloud.com", "docomo.ne.jp"))
        email = f"{first_roman.lower()}.{last_roman.lower()}.{index:05d}@{domain}"
    zip_code = prefecture = address = None
    if rng.random() < 0.6:
        local = (
            store.prefecture if rng.random() < 0.8 else rng.choice(("神奈川県", "兵庫県", "埼玉県"))
        )
        prefecture = local
        zip_code = f"{rng.randint(100, 999)}-{rng.randint(0, 9999):04d}"
        block = f"{rng.randint(1, 5)}-{rng.randint(1, 30)}-{rng.randint(1, 20)}"
        address = f"{rng.choice(pools.towns)}{block}"
    return {
        "last_name": last,
        "first_name": first,
        "last_kana": jaconv.hira2kata(last_kana),
        "first_kana": jaconv.hira2kata(first_kana),
        "sex": 0 if rng.random() < 0.05 else 2 if first in females else 1,
        "phone": phone,
        "mobile": mobile,
        "email": email,
        "zip": zip_code,
        "prefecture": prefecture,
        "address": address,
    }


def _sale_time(start: dt.datetime, position: float) -> dt.datetime:
    """The wall time of ``position`` (0..DAYS) in opening hours, ascending."""
    day = int(position)
    hours = CLOSE_HOUR - OPEN_HOUR
    seconds = int((position - day) * hours * 3600)
    return start + dt.timedelta(days=day, hours=OPEN_HOUR, seconds=seconds)


def generate(
    seed: int = 1,
    *,
    members: int = 600,
    sales: int = 6000,
    end: dt.datetime | None = None,
    ec_seed: int = 1,
    ec_customers: int = 3000,
    ec_share: float = 0.3,
    merged_share: float = 0.03,
    offline_share: float = 0.03,
    return_share: float = 0.02,
    cancel_share: float = 0.01,
) -> StoreData:
    """Two stores' members and ``sales`` receipts over the year before ``end``.

    ``ec_share`` of the members are customers of the EC sandbox shop seeded ``ec_seed``
    with ``ec_customers`` customers; ``merged_share`` of the members were merged into
    another at the register. The other shares are of the sales.
    """
    if members < 1 or sales < 0:
        raise ValueError("members must be at least 1 and sales not negative")
    for name, share in (
        ("ec_share", ec_share),
        ("merged_share", merged_share),
        ("offline_share", offline_share),
        ("return_share", return_share),
        ("cancel_share", cancel_share),
    ):
        if not 0.0 <= share <= 1.0:
            raise ValueError(f"{name} must be between 0 and 1, not {share}")
    end = (end or dt.datetime.now(JST)).astimezone(JST)
    start = dt.datetime.combine(end.date() - dt.timedelta(days=DAYS), dt.time(), JST)
    rng = random.Random(f"pos-seed:{seed}")
    goods = products(seed)
    females = _female_names()
    people = _ec_sandbox("catalog").pools(seed + 7_000)

    shared = min(round(members * ec_share), ec_customers)
    ec_indexes = sorted(rng.sample(range(ec_customers), shared))
    ec = _ec_people(ec_seed, ec_customers, ec_indexes) if ec_indexes else {}
    member_list: list[Member] = []
    for index in range(members):
        mrng = random.Random(f"pos-member:{seed}:{index}")
        store = mrng.choices(STORES, _STORE_WEIGHTS)[0]
        ec_index = ec_indexes[index] if index < shared else None
        fields = (
            _shared_member(mrng, index, ec[ec_index], females)
            if ec_index is not None
            else _store_member(mrng, index, store, people, females)
        )
        joined = start - dt.timedelta(days=int(mrng.expovariate(1 / 400)), hours=-OPEN_HOUR - 1)
        if mrng.random() < 0.35:  # signed up during the year
            joined = _sale_time(start, mrng.random() * DAYS)
        member_list.append(
            Member(
                index=index,
                code=f"{2_000_000_000 + index * 37 + 11:010d}",
                store_id=store.id,
                joined=joined,
                updated=joined,
                birth_date=_birth_date(mrng, end),
                points=mrng.choice((0, 0, 50, 120, 300, 800)),  # carried from before
                ec_customer=ec_index,
                **fields,
            )
        )
    # Merges: a duplicate sign-up (a lost card) merged into the person's other record.
    # The duplicate is written a little differently (as staff retype it).
    merged = max(0, round(members * merged_share)) if members > 1 else 0
    for dup_index in rng.sample(range(members), merged):
        survivor = member_list[dup_index]
        if survivor.status != "active":
            continue
        mrng = random.Random(f"pos-merge:{seed}:{dup_index}")
        dup = Member(
            index=len(member_list),
            code=f"{3_000_000_000 + dup_index * 41 + 7:010d}",
            store_id=mrng.choice(STORES).id,
            last_name=survivor.last_kana if mrng.random() < 0.5 else survivor.last_name,
            first_name=survivor.first_kana if mrng.random() < 0.5 else survivor.first_name,
            last_kana=survivor.last_kana,
            first_kana=survivor.first_kana,
            sex=survivor.sex,
            birth_date=survivor.birth_date,
            phone=survivor.phone,
            mobile=survivor.mobile,
            email=None,
            zip=survivor.zip,
            prefecture=survivor.prefecture,
            address=survivor.address,
            joined=survivor.joined,
            updated=survivor.joined,
            points=mrng.choice((0, 100, 250)),
            ec_customer=survivor.ec_customer,
        )
        dup.merged_into = survivor.code
        dup.merged_at = _sale_time(start, mrng.uniform(0.3, 0.9) * DAYS)
        member_list.append(dup)

    sale_list = _sales(
        random.Random(f"pos-sales:{seed}"),
        start,
        end,
        sales,
        goods,
        member_list,
        offline_share=offline_share,
        return_share=return_share,
        cancel_share=cancel_share,
    )
    _apply_points(member_list, sale_list, end)
    return StoreData(seed, end, STORES, goods, member_list, sale_list)


def _pick(rng: random.Random, cumulative: Sequence[float]) -> int:
    """An index drawn by cumulative weights (``random.choices`` without its per-call
    set-up: the sales loop draws millions)."""
    return bisect.bisect(cumulative, rng.random() * cumulative[-1])


def _sales(
    rng: random.Random,
    start: dt.datetime,
    end: dt.datetime,
    count: int,
    goods: tuple[Product, ...],
    members: list[Member],
    *,
    offline_share: float,
    return_share: float,
    cancel_share: float,
) -> list[Sale]:
    """``count`` receipts ascending by sale time over the history, one RNG for all."""
    by_code = {m.code: m for m in members}
    shelf = goods[: -len(_STORE_ONLY)]
    extras = goods[-len(_STORE_ONLY) :]
    shelf_weights = list(
        itertools.accumulate(1.0 / (rank + 1) ** 0.9 for rank in range(len(shelf)))
    )
    activity = list(itertools.accumulate(rng.paretovariate(1.3) for _ in members))
    stores = list(itertools.accumulate(_STORE_WEIGHTS))
    basket = list(itertools.accumulate(_BASKET_WEIGHTS))
    quantities = list(itertools.accumulate(_QUANTITY_WEIGHTS))
    result: list[Sale] = []
    for number in range(1, count + 1):
        sold_at = _sale_time(start, (number - 1 + rng.random()) * DAYS / count)
        store = STORES[_pick(rng, stores)]
        terminal = store.terminals[int(rng.random() * len(store.terminals))]
        member: Member | None = None
        if rng.random() < 0.45:  # the card was shown
            member = members[_pick(rng, activity)]
            if member.merged_at is not None and sold_at >= member.merged_at:
                member = by_code[member.merged_into or ""]  # the card was merged
            if member.joined > sold_at:
                member = None
        lines: list[Line] = []
        for _ in range(_BASKET[_pick(rng, basket)]):
            if rng.random() < 0.12:
                product = extras[int(rng.random() * len(extras))]
            else:
                product = shelf[_pick(rng, shelf_weights)]
            quantity = 1 + _pick(rng, quantities)
            discount = 0
            if product.price >= 1000 and rng.random() < 0.06:
                discount = product.price * quantity // 100 * 10  # 10 % off, whole tens
            lines.append(Line(product, quantity, product.price, discount))
        if rng.random() < return_share:  # an item from an earlier visit brought back
            product = shelf[_pick(rng, shelf_weights)]
            lines.append(Line(product, 1, product.price, returned=True))
        offline = rng.random() < offline_share
        delay = dt.timedelta(seconds=1 + int(rng.random() * 20))
        if offline:  # the register lost its connection: uploaded hours to days later
            delay = dt.timedelta(hours=(1, 3, 8, 20, 30, 50, 66)[int(rng.random() * 7)])
        sale = Sale(
            number=number,
            store=store,
            terminal=terminal,
            member=member,
            sold_at=sold_at,
            received_at=max(sold_at, min(sold_at + delay, end)),
            lines=tuple(lines),
            offline=offline,
        )
        if rng.random() < cancel_share:
            sale.cancelled = True
            sale.cancelled_at = sale.received_at + dt.timedelta(minutes=1 + int(rng.random() * 30))
        result.append(sale)
    return result


def _apply_points(members: list[Member], sales: list[Sale], end: dt.datetime) -> None:
    """Walk the sales in time order: points spent and earned, balances after each sale,
    merged members' balances moving to their survivors, update times."""
    by_code = {m.code: m for m in members}
    merges = sorted(
        (m for m in members if m.merged_at is not None), key=lambda m: m.merged_at or end
    )
    pending = iter(merges)
    upcoming = next(pending, None)
    rng = random.Random(len(sales))
    for sale in sales:
        while upcoming is not None and (upcoming.merged_at or end) <= sale.sold_at:
            _merge(upcoming, by_code[upcoming.merged_into or ""])
            upcoming = next(pending, None)
        member = sale.member
        if member is None or sale.cancelled:
            continue
        subtotal = sale.subtotal
        if member.points >= 100 and subtotal > 0 and rng.random() < 0.15:
            sale.points_spent = min(
                member.points, subtotal, rng.choice((100, 200, 500, member.points))
            )
        sale.points_earned = max(0, sale.total) // POINT_YEN
        member.points += sale.points_earned - sale.points_spent
        sale.points_after = member.points
        member.updated = max(member.updated, sale.received_at)
    for rest in (upcoming, *pending):
        if rest is not None:  # merged after the last sale
            _merge(rest, by_code[rest.merged_into or ""])


def _merge(dup: Member, survivor: Member) -> None:
    """The register's merge: the points move to the survivor, the record stays."""
    assert dup.merged_at is not None
    survivor.points += dup.points
    dup.points = 0
    dup.status = "merged"
    dup.updated = survivor.updated = max(dup.merged_at, survivor.updated)
