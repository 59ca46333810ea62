"""Message templates: Jinja2 in a sandbox, every name checked before anything is sent.

A template may name only the fields of :data:`FIELDS`; one that names anything else, or
does not parse, is refused when the campaign is created (:func:`check_template`), with
the line. Rendering is sandboxed (no attribute of Python objects is reachable) and
strict (an undefined name is an error, never an empty string in a customer's message).
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateSyntaxError, meta, nodes
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.sandbox import SandboxedEnvironment

from omnicrm.errors import DataError

RECOMMENDED = 3
"""How many recommendations a message's ``recommendations`` holds."""

FIELDS: dict[str, str] = {
    "name": "the name with the honorific: '山田 花子 様' ('お客様' when no name is known)",
    "family_name": "the family name, e.g. '山田' (may be empty)",
    "given_name": "the given name, e.g. '花子' (may be empty)",
    "points": "the points balance, e.g. 1200",
    "last_purchase_at": "the day of the last purchase, 'YYYY-MM-DD' (empty if none)",
    "last_purchase": "the product of the last purchase (empty if none)",
    "shop_name": "the shop's name",
    "variant": "the A/B variant the person is in, e.g. 'A'",
    "coupon_code": "the person's own coupon code, e.g. 'XMAS-7KQ3MZP9TA' (campaigns with "
    "--coupon only)",
    "recommendations": "the products recommended to the person, best first, at most "
    f"{RECOMMENDED}: each with .name, .price ('2,400'; empty where the shop syncs no "
    "catalogue) and .url (empty if none): `{% for item in recommendations %}`; empty "
    "for someone with nothing to recommend",
    "checkout": "the abandoned checkout (cart recovery only): checkout.recovery_url, "
    "checkout.item_count (how many items), checkout.item_names (e.g. "
    "'緑茶 100g \N{MULTIPLICATION SIGN}2、急須'; "
    "empty when the platform gave no lines), checkout.lines (each with .name, .quantity, "
    ".price: `{% for line in checkout.lines %}`), checkout.total (e.g. '2,400'), "
    "checkout.currency, checkout.started_at ('YYYY-MM-DD')",
}
"""The per-customer fields a template may use, with what each holds."""

_ENV = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)
# An HTML body escapes what it inserts: a name with '<' in it stays text.
_HTML_ENV = SandboxedEnvironment(
    undefined=StrictUndefined, autoescape=True, keep_trailing_newline=True
)


class TemplateError(DataError):
    """A template that cannot be used: it does not parse, or names an unknown field."""


@dataclass(frozen=True)
class CheckoutFields:
    """The abandoned checkout a cart recovery message is about."""

    recovery_url: str
    items: int
    total: Decimal
    currency: str
    started_at: dt.date
    lines: tuple[CartLine, ...] = ()

    def context(self) -> dict[str, Any]:
        return {
            "recovery_url": self.recovery_url,
            "item_count": self.items,
            "item_names": "、".join(
                f"{line.name}{_TIMES}{line.quantity}" if line.quantity > 1 else line.name
                for line in self.lines
                if line.name
            ),
            "lines": [
                {
                    "name": line.name,
                    "quantity": line.quantity,
                    "price": _amount(line.unit_price, self.currency),
                }
                for line in self.lines
            ],
            "total": _amount(self.total, self.currency),
            "currency": self.currency,
            "started_at": self.started_at.isoformat(),
        }


_TIMES = " \N{MULTIPLICATION SIGN}"  # between a name and its quantity, as 緑茶 100g x2


@dataclass(frozen=True)
class CartLine:
    """One line of an abandoned cart, as a recovery message names it."""

    name: str
    quantity: int
    unit_price: Decimal


def _amount(value: Decimal, currency: str) -> str:
    # Yen have no minor unit: '2,400', not '2,400.00'.
    places = 0 if currency == "JPY" else 2
    return f"{value:,.{places}f}"


@dataclass(frozen=True)
class RecommendationFields:
    """One product recommended to the person, as a message shows it."""

    name: str
    price: Decimal | None
    currency: str | None
    url: str | None

    def context(self) -> dict[str, str]:
        price = _amount(self.price, self.currency or "JPY") if self.price is not None else ""
        return {"name": self.name, "price": price, "url": self.url or ""}


@dataclass(frozen=True)
class Fields:
    """What a template is rendered with for one person."""

    family_name: str | None
    given_name: str | None
    points: int
    last_purchase_at: dt.date | None
    last_purchase: str | None
    shop_name: str
    variant: str
    coupon_code: str | None = None
    checkout: CheckoutFields | None = None
    recommendations: tuple[RecommendationFields, ...] = ()

    def context(self) -> dict[str, Any]:
        written = " ".join(p for p in (self.family_name, self.given_name) if p)
        return {
            "name": f"{written} 様" if written else "お客様",
            "family_name": self.family_name or "",
            "given_name": self.given_name or "",
            "points": self.points,
            "last_purchase_at": self.last_purchase_at.isoformat() if self.last_purchase_at else "",
            "last_purchase": self.last_purchase or "",
            "shop_name": self.shop_name,
            "variant": self.variant,
            "coupon_code": self.coupon_code or "",
            "checkout": self.checkout.context() if self.checkout else {},
            "recommendations": [r.context() for r in self.recommendations],
        }


SAMPLE = Fields(
    "山田",
    "花子",
    1200,
    dt.date(2026, 11, 1),
    "緑茶 100g",
    "見本店",
    "A",
    "SAMPLE-7KQ3MZP9TA",
    CheckoutFields(
        "https://shop.example.jp/checkouts/SAMPLE/recover",
        2,
        Decimal(4800),
        "JPY",
        dt.date(2026, 11, 1),
        (CartLine("緑茶 100g", 1, Decimal(1800)), CartLine("急須", 1, Decimal(3000))),
    ),
    (
        RecommendationFields(
            "ほうじ茶 100g", Decimal(1200), "JPY", "https://shop.example.jp/products/hojicha"
        ),
        RecommendationFields("湯呑み", None, None, None),
    ),
)


def check_template(
    source: str,
    *,
    what: str = "template",
    html: bool = False,
    coupon: bool = True,
    checkout: bool = False,
) -> None:
    """Refuse ``source`` (TemplateError naming ``what`` and the line) when it does not
    parse, names a field not in :data:`FIELDS` (``coupon_code`` only when the campaign
    has a ``coupon``, ``checkout`` only in a cart recovery), or fails on a sample
    customer (``checkout.nosuch`` included)."""
    try:
        parsed = (_HTML_ENV if html else _ENV).parse(source)
    except TemplateSyntaxError as exc:
        raise TemplateError(f"{what}, line {exc.lineno}: {exc.message}") from None
    named = meta.find_undeclared_variables(parsed)
    unknown = sorted(named - FIELDS.keys())
    if unknown:
        raise TemplateError(
            f"{what} names unknown field(s) {', '.join(unknown)} (known: {', '.join(FIELDS)})"
        )
    if not coupon and "coupon_code" in named:
        raise TemplateError(
            f"{what} names coupon_code, but the campaign has no coupon (give --coupon)"
        )
    if not checkout and "checkout" in named:
        raise TemplateError(
            f"{what} names checkout, which only a cart recovery message has "
            "([messaging.cart_recovery])"
        )
    if "checkout" in named:
        known = SAMPLE.checkout.context() if SAMPLE.checkout else {}
        for node in parsed.find_all((nodes.Getattr, nodes.Getitem)):
            part: object
            if isinstance(node, nodes.Getattr):
                inner, part = node.node, node.attr
            elif isinstance(node, nodes.Getitem):
                inner, part = node.node, _key(node.arg)
            else:
                continue
            if isinstance(inner, nodes.Name) and inner.name == "checkout" and part not in known:
                raise TemplateError(
                    f"{what}, line {node.lineno}: checkout has no field {part!r} "
                    f"(known: {', '.join(known)})"
                )
    render(source, SAMPLE, what=what, html=html)


def _key(arg: nodes.Expr) -> object:
    return arg.value if isinstance(arg, nodes.Const) else None


@functools.lru_cache(maxsize=64)
def _compiled(source: str, html: bool = False) -> Template:
    # A campaign renders its few templates thousands of times: compile each once.
    return (_HTML_ENV if html else _ENV).from_string(source)


def render(source: str, fields: Fields, *, what: str = "template", html: bool = False) -> str:
    """``source`` rendered for one person (``html``: inserted values escaped); a
    TemplateError if it cannot be."""
    try:
        return _compiled(source, html).render(fields.context())
    except TemplateSyntaxError as exc:
        raise TemplateError(f"{what}, line {exc.lineno}: {exc.message}") from None
    except (UndefinedError, SecurityError) as exc:
        raise TemplateError(f"{what}: {exc}") from None
    except Exception as exc:  # a filter given the wrong type, a division by zero ...
        raise TemplateError(f"{what}: {type(exc).__name__}: {exc}") from None
