"""Fixed vocabularies of the sandbox shop: names, places, products, stores.

Faker (ja_JP) is asked once per sandbox for pools of names, towns, buildings and
companies; every record then picks from the pools with its own seeded RNG, which is
hundreds of times faster than calling Faker per record and still reproducible.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass

# Prefectures in JIS X 0401 order, so the index + 1 is the ISO 3166-2:JP number.
PREFECTURES: tuple[str, ...] = (
    "北海道", "青森県", "岩手県", "宮城県", "秋田県", "山形県", "福島県", "茨城県",
    "栃木県", "群馬県", "埼玉県", "千葉県", "東京都", "神奈川県", "新潟県", "富山県",
    "石川県", "福井県", "山梨県", "長野県", "岐阜県", "静岡県", "愛知県", "三重県",
    "滋賀県", "京都府", "大阪府", "兵庫県", "奈良県", "和歌山県", "鳥取県", "島根県",
    "岡山県", "広島県", "山口県", "徳島県", "香川県", "愛媛県", "高知県", "福岡県",
    "佐賀県", "長崎県", "熊本県", "大分県", "宮崎県", "鹿児島県", "沖縄県",
)  # fmt: skip

# Cities of the populous prefectures, so most addresses are consistent; the rest fall
# back to Faker's city list.
CITIES: dict[int, tuple[str, ...]] = {
    0: ("札幌市中央区", "札幌市北区", "旭川市", "函館市"),
    10: ("さいたま市大宮区", "川口市", "所沢市", "越谷市"),
    11: ("千葉市中央区", "船橋市", "柏市", "市川市"),
    12: ("渋谷区", "新宿区", "世田谷区", "港区", "練馬区", "杉並区", "八王子市", "町田市"),
    13: ("横浜市青葉区", "横浜市港北区", "川崎市中原区", "相模原市中央区", "藤沢市"),
    21: ("静岡市葵区", "浜松市中央区", "沼津市"),
    22: ("名古屋市中区", "名古屋市千種区", "豊田市", "岡崎市"),
    25: ("京都市左京区", "京都市中京区", "宇治市"),
    26: ("大阪市北区", "大阪市中央区", "堺市堺区", "豊中市", "吹田市"),
    27: ("神戸市中央区", "姫路市", "西宮市", "尼崎市"),
    33: ("広島市中区", "福山市"),
    39: ("福岡市博多区", "福岡市中央区", "北九州市小倉北区", "久留米市"),
}

# Rough population weights: the big metropolitan prefectures dominate a web shop.
PREFECTURE_WEIGHTS: tuple[int, ...] = tuple(
    {12: 14, 13: 9, 26: 9, 22: 7, 10: 7, 11: 6, 27: 5, 0: 5, 39: 5, 21: 3, 25: 3, 33: 2}.get(i, 1)
    for i in range(len(PREFECTURES))
)

EMAIL_DOMAINS: tuple[str, ...] = (
    "gmail.com", "gmail.com", "gmail.com", "yahoo.co.jp", "yahoo.co.jp", "icloud.com",
    "docomo.ne.jp", "ezweb.ne.jp", "softbank.ne.jp", "outlook.jp", "hotmail.co.jp",
)  # fmt: skip

TAGS: tuple[str, ...] = (
    "メルマガ購読", "LINE友だち", "ギフト利用", "店舗会員", "法人", "定期便", "要確認",
)  # fmt: skip

NOTES: tuple[str, ...] = (
    "ギフト包装をご希望。",
    "熨斗は「御礼」でお願いします。",
    "不在が多いため置き配を希望。",
    "法人のお客様(請求書払い)。",
    "小麦アレルギーあり。",
    "店頭でポイントカードを統合済み。",
    "連絡はお電話を希望。",
    "LINEからお問い合わせあり。",
)

STORES: tuple[str, ...] = ("表参道店", "梅田店", "名古屋栄店", "天神店", "札幌大通店")
"""Retail locations (Shopify POS)."""

_TEAS = (
    ("静岡 深蒸し煎茶", "TEA"), ("宇治抹茶", "MAT"), ("加賀棒ほうじ茶", "HOJ"),
    ("国産 和紅茶", "WKC"), ("八女 玉露", "GYO"), ("玄米茶", "GEN"),
    ("京番茶", "KBN"), ("水出し緑茶 ティーバッグ", "MZD"),
)  # fmt: skip
_TEA_SIZES = (("50g", 500, 1500), ("100g", 900, 2800), ("200g", 1600, 5000), ("500g", 3500, 9000))
_GOODS = (
    ("有田焼 湯呑み", "ARI", ("白磁", "藍", "朱"), 1800, 6800),
    ("南部鉄器 急須", "NTK", ("黒", "紺"), 6800, 30000),
    ("信楽焼 茶碗", "SGR", ("灰釉", "黒釉"), 2400, 12000),
    ("今治タオル ハンカチ", "IMB", ("白", "生成", "藍"), 800, 2200),
    ("竹製 茶筅", "CHS", ("八十本立",), 2800, 6500),
    ("桐箱入り 煎茶ギフト", "GFT", ("2本入", "3本入"), 4500, 15000),
    ("季節の和菓子 詰め合わせ", "WAG", ("6個入", "12個入"), 1500, 4800),
    ("抹茶テリーヌ", "TRN", ("ハーフ", "ホール"), 1800, 3900),
)


@dataclass(frozen=True)
class Variant:
    """One sellable variant: the line items of orders point at these."""

    product_id: int
    variant_id: int
    title: str
    variant_title: str
    sku: str
    price: int
    grams: int


@dataclass(frozen=True)
class Pools:
    """Name and place pools drawn from Faker once per sandbox."""

    last_names: tuple[tuple[str, str, str], ...]
    first_names: tuple[tuple[str, str, str], ...]
    towns: tuple[str, ...]
    cities: tuple[str, ...]
    buildings: tuple[str, ...]
    companies: tuple[str, ...]


def _yen(rng: random.Random, low: int, high: int) -> int:
    """A shelf price: log-uniform between the bounds, ending in 00 or 80 like most."""
    value = low * (high / low) ** rng.random()
    hundreds: int = round(value / 100)
    return max(low, hundreds * 100 - (20 if rng.random() < 0.4 else 0))


def catalogue(seed: int) -> tuple[Variant, ...]:
    """The shop's variants, identical for a seed."""
    rng = random.Random(f"catalogue:{seed}")
    variants: list[Variant] = []
    counter = itertools.count()
    for p, (title, code) in enumerate(_TEAS):
        for s, (size, low, high) in enumerate(_TEA_SIZES):
            variants.append(
                Variant(
                    product_id=8_801_000_000_000 + p * 1_013,
                    variant_id=46_120_000_000_000 + next(counter) * 1_019,
                    title=title,
                    variant_title=size,
                    sku=f"{code}-{s + 1:02d}",
                    price=_yen(rng, low, high),
                    grams=int(size.removesuffix("g")) + 40,
                )
            )
    for p, (title, code, options, low, high) in enumerate(_GOODS, start=len(_TEAS)):
        for s, option in enumerate(options):
            variants.append(
                Variant(
                    product_id=8_801_000_000_000 + p * 1_013,
                    variant_id=46_120_000_000_000 + next(counter) * 1_019,
                    title=title,
                    variant_title=option,
                    sku=f"{code}-{s + 1:02d}",
                    price=_yen(rng, low, high),
                    grams=rng.randrange(150, 2500),
                )
            )
    return tuple(variants)


def popularity(variants: tuple[Variant, ...], seed: int) -> list[float]:
    """Cumulative pick weights: a few best sellers, a long tail (Zipf-like)."""
    order = list(range(len(variants)))
    random.Random(f"popularity:{seed}").shuffle(order)
    weights = [0.0] * len(variants)
    for rank, index in enumerate(order):
        weights[index] = 1.0 / (rank + 1) ** 0.9
    return list(itertools.accumulate(weights))


def pools(seed: int) -> Pools:
    """Pools from Faker ja_JP; imported here so loading the plugin stays cheap."""
    from faker import Faker
    from faker.providers.person.ja_JP import Provider as Person

    fake = Faker("ja_JP")
    fake.seed_instance(seed)
    firsts = tuple(Person.first_name_female_pairs) + tuple(Person.first_name_male_pairs)
    return Pools(
        last_names=tuple(Person.last_name_pairs),
        first_names=firsts,
        towns=tuple(sorted({fake.town() for _ in range(400)})),
        cities=tuple(sorted({fake.city() for _ in range(200)})),
        buildings=tuple(sorted({fake.building_name() for _ in range(100)})),
        companies=tuple(sorted({fake.company() for _ in range(300)})),
    )
