"""A channel whose customers carry personal data and awkward values, for failure tests.

Every customer has an email and a phone (so a test can look for them in errors and
logs); ``odd_every`` makes every n-th one hold what a store cannot take as is: a
300-character family name, a NUL and a line break in text, a NUL in the raw note, an
overlong email, points beyond a 32-bit integer. ``spoil_every`` makes every n-th one a
record the store refuses (no raw payload: a NOT NULL column), as a plugin that bypasses
validation could yield.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator

from pydantic import BaseModel

import omnicrm
from omnicrm import Customer, StreamContext

BASE = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)


class PersonalSettings(BaseModel):
    customers: int = 40
    odd_every: int = 0  # 0: no odd values
    spoil_every: int = 0  # 0: nothing the store refuses
    page_size: int = 50
    page_delay: float = 0.0
    padding: int = 0  # characters of filler in each raw payload, to fill a disk


def email(i: int) -> str:
    return f"hanako.sato{i}@example.jp"


def phone(i: int) -> str:
    return f"+8190{i:08d}"


def customer(i: int, settings: PersonalSettings) -> Customer:
    odd = bool(settings.odd_every) and i % settings.odd_every == 0
    return Customer(
        id=f"P-{i:05d}",
        family_name=("佐" * 300) if odd else "佐藤",
        given_name="花\x00子\n" if odd else "花子",
        email=("x" * 400 + email(i)) if odd else email(i),
        phone=phone(i),
        points=2**40 if odd else 10,
        updated_at=BASE + dt.timedelta(seconds=i),
        raw={
            "note": f"電話 {phone(i)}\x00 メール {email(i)}" if odd else "",
            "padding": "x" * settings.padding,
        },
    )


@omnicrm.hookimpl
def omnicrm_register(register: omnicrm.Registrar) -> None:
    register.channel_type(
        omnicrm.ChannelType(
            name="personal",
            settings=PersonalSettings,
            streams=(omnicrm.Stream.CUSTOMERS,),
            title="Personal",
        )
    )


@omnicrm.hookimpl
def omnicrm_sync_customers(ctx: StreamContext[PersonalSettings]) -> Iterator[Customer]:
    s = ctx.settings
    for i in range(s.customers):
        if s.page_delay and i % s.page_size == 0:
            time.sleep(s.page_delay)
        record = customer(i, s)
        if s.spoil_every and i % s.spoil_every == 0:
            record = record.model_copy(update={"raw": None})
        if ctx.since is None or record.updated_at >= ctx.since:
            yield record
