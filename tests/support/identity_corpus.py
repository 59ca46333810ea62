"""A corpus with known truth for identity resolution: the same people in a shop's store
(POS, connection ``store``) and its EC site (connection ``ec``), written the way real
data differs.

Each person lives in a household. Households share a family name and often a landline
(spouses, a parent and a grown child), and some share one email, so keys alone would
merge people who must stay apart. Each record then writes the person its own way:
full-width digits and letters, phones with or without hyphens, ``+81`` or ``0``,
upper-case or padded emails, names in kanji, katakana, half-width kana (with or without
small kana) or romaji, missing fields, typos in emails and names (a mistyped letter, an
IME choosing the wrong kanji of the same reading, a dropped voicing mark), and the POS
member code on some EC records.

``generate`` is seeded: the same arguments give the same corpus.
"""

from __future__ import annotations

import datetime as dt
import random
import string
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import jaconv
import phonenumbers
from faker import Faker

from omnicrm.core.records import Customer, Gender

STORE = "store"
EC = "ec"

_BASE = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)

# Kanji an IME may pick instead (the same reading): 太郎/太朗, 浩/宏 ... A typo of the
# written name, as customers make it at a keyboard.
_IME_SLIPS = {
    "郎": "朗",
    "浩": "宏",
    "裕": "祐",
    "美": "実",
    "幸": "孝",
    "智": "知",
    "藤": "籐",
    "田": "多",
    "野": "埜",
    "沢": "澤",
    "辺": "邊",
    "斎": "斉",
    "崎": "嵜",
    "島": "嶋",
    "介": "助",
}
_VOICED = str.maketrans(
    "ガギグゲゴザジズゼゾダヂヅデドバビブベボ", "カキクケコサシスセソタチツテトハヒフヘホ"
)
_SMALL = str.maketrans("ャュョッァィゥェォ", "ヤユヨツアイウエオ")
_EMAIL_DOMAINS = ("gmail.com", "yahoo.co.jp", "docomo.ne.jp", "ezweb.ne.jp", "icloud.com")


@dataclass
class _Person:
    pid: int
    family: tuple[str, str, str]  # kanji, katakana, romaji
    given: tuple[str, str, str]
    gender: Gender
    birth_date: dt.date
    mobile: str | None
    email: str | None
    landline: str | None = None
    family_email: str | None = None
    member_code: str | None = None


@dataclass
class Corpus:
    """Source customers per connection and the truth: the person behind each record."""

    customers: dict[str, list[Customer]] = field(default_factory=dict)
    truth: dict[tuple[str, str], int] = field(default_factory=dict)
    households: int = 0

    @property
    def records(self) -> int:
        return sum(len(c) for c in self.customers.values())

    @property
    def people(self) -> int:
        return len(set(self.truth.values()))


def generate(households: int = 1000, *, seed: int = 0) -> Corpus:
    """A corpus of ``households`` households (about 1.8 people and 2.4 records each)."""
    rng = random.Random(seed)
    fake = Faker("ja_JP")
    fake.seed_instance(seed)
    used_phones: set[str] = set()
    used_codes: set[str] = set()
    corpus = Corpus(households=households)
    records: dict[str, list[tuple[Customer, int]]] = {STORE: [], EC: []}
    pid = 0
    for household in range(households):
        members = _household(rng, fake, household, pid, used_phones, used_codes)
        pid += len(members)
        for person in members:
            for connection, customer in _records_of(rng, person):
                records[connection].append((customer, person.pid))
    for connection, written in records.items():
        # Ids in an order unrelated to people, as platforms number them.
        rng.shuffle(written)
        prefix = "P" if connection == STORE else "gid://shopify/Customer/"
        customers = []
        for number, (customer, person_id) in enumerate(written, start=1):
            record_id = f"{prefix}{100000 + number}"
            customers.append(customer.model_copy(update={"id": record_id}))
            corpus.truth[(connection, record_id)] = person_id
        corpus.customers[connection] = customers
    return corpus


def _phone(rng: random.Random, used: set[str], *, mobile: bool) -> str:
    while True:
        if mobile:
            # 070/080/090, then a subscriber number that does not start with 0.
            number = f"0{rng.choice('789')}0{rng.randrange(1, 10)}{rng.randrange(10**7):07d}"
        else:
            area = rng.choice(["3", "6", "45", "52", "92", "11", "22", "75", "78", "82"])
            number = (
                f"0{area}{rng.randrange(2 * 10 ** (9 - len(area) - 1), 10 ** (9 - len(area))):d}"
            )
        # Only numbers that exist in Japan's numbering plan: what a customer really has.
        if number not in used and phonenumbers.is_valid_number(phonenumbers.parse(number, "JP")):
            used.add(number)
            return number


def _email(rng: random.Random, given: str, family: str, serial: int) -> str:
    local = rng.choice(
        [f"{given}.{family}", f"{family}{given[0]}", f"{given}{rng.randrange(100)}", given]
    ).lower()
    # The serial keeps addresses of different people apart, as a mail provider does.
    return f"{local}{serial}@{rng.choice(_EMAIL_DOMAINS)}"


def _household(
    rng: random.Random,
    fake: Faker,
    household: int,
    first_pid: int,
    used_phones: set[str],
    used_codes: set[str],
) -> list[_Person]:
    size = rng.choices([1, 2, 3, 4], weights=[50, 30, 13, 7])[0]
    family = fake.last_name_pair()
    landline = _phone(rng, used_phones, mobile=False) if size > 1 and rng.random() < 0.6 else None
    shared_email = None
    if size > 1 and rng.random() < 0.25:
        shared_email = _email(rng, "family", family[2], household)
    # Spouses of about one age, children some 25-35 years younger: all adults.
    parent_year = rng.randrange(1950, 1985)
    people: list[_Person] = []
    given_taken: set[str] = set()
    for k in range(size):
        gender = rng.choice([Gender.FEMALE, Gender.MALE])
        if k == 1:
            gender = Gender.MALE if people[0].gender is Gender.FEMALE else Gender.FEMALE
        while True:
            given = (
                fake.first_name_female_pair()
                if gender is Gender.FEMALE
                else fake.first_name_male_pair()
            )
            if given[0] not in given_taken:
                given_taken.add(given[0])
                break
        year = parent_year + (rng.randrange(-4, 5) if k < 2 else rng.randrange(25, 36))
        birth = dt.date(year, rng.randrange(1, 13), rng.randrange(1, 29))
        pid = first_pid + k
        people.append(
            _Person(
                pid=pid,
                family=family,
                given=given,
                gender=gender,
                birth_date=birth,
                # Everyone can be called: without a mobile, on the household's landline.
                mobile=_phone(rng, used_phones, mobile=True)
                if landline is None or rng.random() < 0.85
                else None,
                email=_email(rng, given[2], family[2], pid) if rng.random() < 0.9 else None,
                landline=landline,
                family_email=shared_email if shared_email and rng.random() < 0.7 else None,
            )
        )
    for person in people:
        if rng.random() < 0.7:
            while True:
                code = f"{rng.randrange(10**8):08d}"
                if code not in used_codes:
                    used_codes.add(code)
                    person.member_code = code
                    break
    return people


def _records_of(rng: random.Random, person: _Person) -> Iterable[tuple[str, Customer]]:
    """The person's records: a POS member record if they hold a card, EC accounts."""
    in_store = person.member_code is not None and rng.random() < 0.9
    ec_accounts = rng.choices([0, 1, 2], weights=[25, 65, 10])[0]
    if not in_store and ec_accounts == 0:
        ec_accounts = 1
    if in_store:
        yield STORE, _store_record(rng, person)
    for n in range(ec_accounts):
        yield EC, _ec_record(rng, person, in_store, second=n > 0)


def _updated(rng: random.Random) -> dt.datetime:
    return _BASE + dt.timedelta(minutes=rng.randrange(60 * 24 * 365))


def _store_record(rng: random.Random, person: _Person) -> Customer:
    """A POS member record: the card form, typed at a register; kana-heavy, a phone
    nearly always, an email two times in three."""
    kanji = rng.random() < 0.75
    kana = not kanji or rng.random() < 0.7
    family_kana, given_kana = person.family[1], person.given[1]
    if kana and rng.random() < 0.5:
        # An old register: half-width katakana, sometimes without small kana.
        family_kana, given_kana = (jaconv.z2h(k, kana=True) for k in (family_kana, given_kana))
        if rng.random() < 0.3:
            family_kana, given_kana = (
                jaconv.z2h(jaconv.h2z(k).translate(_SMALL), kana=True)
                for k in (family_kana, given_kana)
            )
    family, given = (person.family[0], person.given[0]) if kanji else (None, None)
    if kanji and rng.random() < 0.04:
        family, given = _ime_slip(rng, family, given)
    phone = person.mobile or person.landline
    if person.mobile and person.landline and rng.random() < 0.05:
        phone = person.landline  # the home number, as written on the card form
    email = person.email or person.family_email
    family, given = _one_field(rng, family, given)
    family_kana, given_kana = _one_field(rng, family_kana, given_kana)
    return Customer(
        id="-",
        family_name=family,
        given_name=given,
        family_name_kana=family_kana if kana else None,
        given_name_kana=given_kana if kana else None,
        email=_write_email(rng, email) if email and rng.random() < 0.65 else None,
        phone=_write_phone(rng, phone) if phone and rng.random() < 0.95 else None,
        birth_date=person.birth_date if rng.random() < 0.6 else None,
        gender=person.gender if rng.random() < 0.7 else Gender.UNKNOWN,
        member_code=_write_code(rng, person.member_code),
        updated_at=_updated(rng),
    )


def _ec_record(rng: random.Random, person: _Person, in_store: bool, *, second: bool) -> Customer:
    """An EC account: typed by the customer, kanji with or without kana, or romaji.

    An account needs an email, and delivery a phone (a rare checkout skips it).
    """
    romaji = rng.random() < 0.05
    if romaji:
        family, given = person.family[2], person.given[2]
        if rng.random() < 0.5:
            family, given = family.upper(), given.upper()
        family_kana = given_kana = None
    else:
        family, given = person.family[0], person.given[0]
        if rng.random() < 0.03:
            family, given = _ime_slip(rng, family, given)
        has_kana = rng.random() < 0.9
        family_kana = _kana_typo(rng, person.family[1]) if has_kana else None
        given_kana = person.given[1] if has_kana else None
        if has_kana and rng.random() < 0.5:
            family_kana, given_kana = (jaconv.kata2hira(k) for k in (family_kana, given_kana))  # type: ignore[arg-type]
    if rng.random() < 0.03:
        family = given = family_kana = given_kana = None  # a guest checkout, no name kept
    # An account needs an email: the person's own, else the family's. A second account
    # was made with another address (an old one, the family's).
    email = person.email or person.family_email or _email(rng, "ec", person.family[2], person.pid)
    if second and rng.random() < 0.5:
        email = person.family_email or _email(rng, "old", person.family[2], 10**7 + person.pid)
    phone = person.mobile or person.landline
    if person.mobile and person.landline and rng.random() < 0.05:
        phone = person.landline
    code = None
    if in_store and rng.random() < 0.5:
        code = _write_code(rng, person.member_code)
    return Customer(
        id="-",
        family_name=family,
        given_name=given,
        family_name_kana=family_kana,
        given_name_kana=given_kana,
        email=_write_email(rng, email, typo=0.03) if email else None,
        phone=_write_phone(rng, phone) if phone and rng.random() < 0.97 else None,
        birth_date=person.birth_date if rng.random() < 0.35 else None,
        gender=person.gender if rng.random() < 0.4 else Gender.UNKNOWN,
        member_code=code,
        updated_at=_updated(rng),
    )


def _one_field(
    rng: random.Random, family: str | None, given: str | None
) -> tuple[str | None, str | None]:
    """Some registers keep the whole name in one field: '山田 太郎' and no given name."""
    if family is not None and given is not None and rng.random() < 0.1:
        return f"{family}{rng.choice([' ', '　', ''])}{given}", None
    return family, given


def _ime_slip(rng: random.Random, family: str, given: str) -> tuple[str, str]:
    """One kanji replaced by another of the same reading, in the family or given name."""
    for _ in range(4):
        part = rng.choice([0, 1])
        text = (family, given)[part]
        spots = [i for i, ch in enumerate(text) if ch in _IME_SLIPS and _IME_SLIPS[ch] != ch]
        if spots:
            i = rng.choice(spots)
            slipped = text[:i] + _IME_SLIPS[text[i]] + text[i + 1 :]
            return (slipped, given) if part == 0 else (family, slipped)
    return family, given


def _kana_typo(rng: random.Random, kana: str) -> str:
    """A reading as typed: now and then a voicing mark dropped or a small kana enlarged."""
    if rng.random() < 0.04:
        dropped = kana.translate(_VOICED)
        if dropped != kana:
            # Only the first voiced kana loses its mark.
            i = next(i for i, (a, b) in enumerate(zip(kana, dropped, strict=True)) if a != b)
            return kana[:i] + dropped[i] + kana[i + 1 :]
    return kana


def _full_width(text: str) -> str:
    return jaconv.h2z(text, kana=False, ascii=True, digit=True)


def _write_phone(rng: random.Random, number: str) -> str:
    """A domestic number (0 + 9 or 10 digits) written one of the ways people write it."""
    if number.startswith(("070", "080", "090")):
        groups = [number[:3], number[3:7], number[7:]]
    elif number.startswith(("03", "06")):
        groups = [number[:2], number[2:6], number[6:]]
    else:
        groups = [number[:3], number[3:6], number[6:]]
    style = rng.randrange(8)
    if style == 0:
        return number
    if style == 1:
        return "-".join(groups)
    if style == 2:
        return _full_width("-".join(groups))
    if style == 3:
        return "+81 " + "-".join([groups[0][1:], *groups[1:]])
    if style == 4:
        return "+81" + number[1:]
    if style == 5:
        return f"({groups[0]}){groups[1]}-{groups[2]}"
    if style == 6:
        return "ー".join(_full_width(g) for g in groups)  # the long-vowel mark as a dash
    return " ".join(groups)


def _write_email(rng: random.Random, email: str, *, typo: float = 0.0) -> str:
    if typo and rng.random() < typo:
        local, domain = email.split("@")
        i = rng.randrange(len(local))
        local = local[:i] + rng.choice(string.ascii_lowercase) + local[i + 1 :]
        email = f"{local}@{domain}"
    style = rng.randrange(6)
    if style == 0:
        return email.upper()
    if style == 1:
        return f"  {email} "
    if style == 2:
        return email[0].upper() + email[1:]
    if style == 3 and rng.random() < 0.3:
        return _full_width(email)
    return email


def _write_code(rng: random.Random, code: str | None) -> str | None:
    if code is None:
        return None
    style = rng.randrange(4)
    if style == 0:
        return f"{code[:4]}-{code[4:]}"
    if style == 1:
        return _full_width(code)
    if style == 2:
        return f"{code[:4]} {code[4:]}"
    return code


# -- scoring -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Scores:
    """Pairwise precision and recall of a clustering against the truth."""

    true_pairs: int
    found_pairs: int
    correct_pairs: int

    @property
    def precision(self) -> float:
        return self.correct_pairs / self.found_pairs if self.found_pairs else 1.0

    @property
    def recall(self) -> float:
        return self.correct_pairs / self.true_pairs if self.true_pairs else 1.0

    def __str__(self) -> str:
        return (
            f"precision {self.precision:.4f} ({self.correct_pairs}/{self.found_pairs} pairs), "
            f"recall {self.recall:.4f} ({self.correct_pairs}/{self.true_pairs} pairs)"
        )


def _pairs(groups: Iterable[Sequence[tuple[str, str]]]) -> int:
    return sum(len(g) * (len(g) - 1) // 2 for g in groups)


def score(
    truth: Mapping[tuple[str, str], int], clusters: Iterable[Sequence[tuple[str, str]]]
) -> Scores:
    """Pairwise scores of ``clusters`` (lists of (connection, record id)) against ``truth``."""
    by_person: dict[int, list[tuple[str, str]]] = {}
    for ref, person in truth.items():
        by_person.setdefault(person, []).append(ref)
    found = correct = 0
    for cluster in clusters:
        found += len(cluster) * (len(cluster) - 1) // 2
        counts: dict[int, int] = {}
        for ref in cluster:
            counts[truth[ref]] = counts.get(truth[ref], 0) + 1
        correct += sum(c * (c - 1) // 2 for c in counts.values())
    return Scores(_pairs(by_person.values()), found, correct)
