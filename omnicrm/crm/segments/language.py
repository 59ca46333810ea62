"""The segment language: a tokenizer and a parser to a typed AST.

Modelled on Shopify's customer segment query language: conditions of the form
``attribute operator value`` joined with AND, OR and NOT and grouped with parentheses::

    number_of_orders >= 2 AND last_order_date > -90d
    customer_tags CONTAINS 'vip' OR amount_spent BETWEEN 10000 AND 50000
    NOT (prefecture = '東京都' OR prefecture IS NULL)

The parser checks everything it can without the database: attribute names, which
operators fit each attribute's type, and every value. Anything wrong raises
`SegmentSyntaxError`, which points at the offending token. Values are checked against
the column they are compared with (its integer range, text length, no control
characters), so a parsed expression runs the same on SQLite and PostgreSQL; the size
and nesting of an expression are limited so that neither this parser nor a database
runs out of stack. docs/segments.md is the reference.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
import unicodedata
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import NoReturn

from sqlalchemy import Float, Integer, String
from sqlalchemy import types as sqltypes

from omnicrm.crm.schema import profile_values, profiles
from omnicrm.crm.segments._dates import shift
from omnicrm.errors import OmnicrmError

# Limits that keep parsing and the SQL it becomes within every backend's stack
# (SQLite's expression depth is 1000; an OR of n terms is n deep there).
MAX_LENGTH = 10_000  # characters
MAX_DEPTH = 32  # parentheses and NOTs, one inside another
MAX_CONDITIONS = 200

# -- errors ------------------------------------------------------------------------------


class SegmentError(OmnicrmError):
    """A segment cannot be defined, found or counted as asked."""


class SegmentSyntaxError(SegmentError):
    """A segment expression is wrong; ``position`` is the offending token's offset.

    ``str()`` shows the message, then the expression's line with carets under the token.
    """

    def __init__(self, message: str, expression: str, position: int, length: int = 1) -> None:
        self.message = message
        self.expression = expression
        self.position = position
        self.length = max(1, length)
        super().__init__(message)

    def __str__(self) -> str:
        start = self.expression.rfind("\n", 0, self.position) + 1
        end = self.expression.find("\n", start)
        line = self.expression[start : None if end < 0 else end]
        column = self.position - start
        token = line[column : column + self.length] or " "
        where = ""
        if "\n" in self.expression:
            lineno = self.expression.count("\n", 0, self.position) + 1
            where = f" (line {lineno}, column {column + 1})"
        shown = "".join(" " if _is_control(ch) else ch for ch in line)
        caret = " " * _width(line[:column]) + "^" * max(1, _width(token))
        return f"{self.message}{where}\n  {shown}\n  {caret}"


def _is_control(ch: str) -> bool:
    """A control character or a lone surrogate: no store keeps it, no terminal shows it."""
    return unicodedata.category(ch) in ("Cc", "Cs")


def _width(text: str) -> int:
    """Terminal columns ``text`` takes: East Asian wide characters take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


# -- attributes --------------------------------------------------------------------------


class Kind(StrEnum):
    """An attribute's type, which decides its operators and values."""

    NUMBER = "number"
    AGE = "age"  # a number of years, computed from profiles.birth_date
    DATE = "date"
    TEXT = "text"
    ENUM = "enum"  # one of a fixed set of values
    LIST = "list"  # multi-valued: profile_values rows


class Op(StrEnum):
    EQ = "="
    NE = "!="
    LT = "<"
    LE = "<="
    GT = ">"
    GE = ">="
    BETWEEN = "BETWEEN"
    CONTAINS = "CONTAINS"
    NOT_CONTAINS = "NOT CONTAINS"
    IS_NULL = "IS NULL"
    IS_NOT_NULL = "IS NOT NULL"


_ORDERED = (Op.EQ, Op.NE, Op.LT, Op.LE, Op.GT, Op.GE, Op.BETWEEN)
_NULLS = (Op.IS_NULL, Op.IS_NOT_NULL)
_OPERATORS: dict[Kind, tuple[Op, ...]] = {
    Kind.NUMBER: _ORDERED,
    Kind.AGE: _ORDERED,
    Kind.DATE: _ORDERED,
    Kind.TEXT: (Op.EQ, Op.NE),
    Kind.ENUM: (Op.EQ, Op.NE),
    Kind.LIST: (Op.CONTAINS, Op.NOT_CONTAINS),
}
_KIND_TEXT = {
    Kind.NUMBER: "a number",
    Kind.AGE: "a whole number of years",
    Kind.DATE: "a date",
    Kind.TEXT: "text",
    Kind.ENUM: "one of a set of values",
    Kind.LIST: "a list of values",
}


@dataclass(frozen=True)
class Attribute:
    """One attribute of the language and where its data lives.

    ``column`` is the profiles column (the profile_values ``attr`` for a LIST).
    ``values`` maps each accepted value (lower case) of an ENUM to what is stored.
    """

    name: str
    kind: Kind
    column: str
    doc: str
    nullable: bool = False
    integer: bool = False
    values: tuple[tuple[str, str], ...] = ()
    minimum: int | None = None
    maximum: int | None = None

    def __repr__(self) -> str:
        return f"Attribute({self.name!r})"

    @property
    def operators(self) -> tuple[Op, ...]:
        """The operators this attribute takes."""
        ops = _OPERATORS[self.kind]
        return ops + _NULLS if self.nullable or self.kind is Kind.LIST else ops

    @property
    def value_map(self) -> dict[str, str]:
        return dict(self.values)


def _enum(*names: str) -> tuple[tuple[str, str], ...]:
    return tuple((name, name) for name in names)


# Shopify's subscription states, onto profiles.consent_<medium> (ConsentState values).
_SUBSCRIPTION = (
    ("subscribed", "opted_in"),
    ("not_subscribed", "unknown"),
    ("pending", "pending"),
    ("unsubscribed", "opted_out"),
)

RFM_GROUP_VALUES = (
    "champions",
    "loyal",
    "potential_loyalist",
    "new",
    "promising",
    "need_attention",
    "about_to_sleep",
    "at_risk",
    "cannot_lose",
    "hibernating",
    "lost",
)
LIFECYCLE_VALUES = (
    "prospect",
    "new",
    "second_purchase_candidate",
    "repeat",
    "loyal",
    "dormant",
    "lapsed",
)


def _subscription(medium: str) -> Attribute:
    return Attribute(
        f"{medium}_subscription_status",
        Kind.ENUM,
        f"consent_{medium}",
        f"Consent to {medium} marketing: SUBSCRIBED, NOT_SUBSCRIBED (never asked), "
        "PENDING (awaiting confirmation) or UNSUBSCRIBED.",
        values=_SUBSCRIPTION,
    )


ATTRIBUTES: dict[str, Attribute] = {
    a.name: a
    for a in (
        Attribute(
            "number_of_orders",
            Kind.NUMBER,
            "number_of_orders",
            "Purchases (paid or fulfilled orders) across every channel.",
            integer=True,
        ),
        Attribute(
            "amount_spent",
            Kind.NUMBER,
            "amount_spent",
            "Total of the purchases, in the shop's currency.",
        ),
        Attribute(
            "first_order_date", Kind.DATE, "first_order_at", "Day of the first purchase.", True
        ),
        Attribute(
            "last_order_date", Kind.DATE, "last_order_at", "Day of the latest purchase.", True
        ),
        Attribute(
            "abandoned_checkout_date",
            Kind.DATE,
            "abandoned_checkout_at",
            "Day the person began a checkout they left, with no order since.",
            True,
        ),
        Attribute(
            "customer_added_date",
            Kind.DATE,
            "first_seen_at",
            "Day the person was first seen in any channel.",
            True,
        ),
        Attribute("customer_tags", Kind.LIST, "tag", "Tags from every channel."),
        Attribute(
            "channel", Kind.LIST, "channel", "Channels bought through: web, pos, app and so on."
        ),
        Attribute("store", Kind.LIST, "store", "Store locations bought at."),
        Attribute("connection", Kind.LIST, "connection", "Connections the person is known in."),
        Attribute(
            "prefecture",
            Kind.TEXT,
            "prefecture",
            "Prefecture of the address, as written ('東京都').",
            True,
        ),
        Attribute(
            "age",
            Kind.AGE,
            "birth_date",
            "Age in whole years today, from the birth date.",
            True,
            integer=True,
            minimum=0,
            maximum=150,
        ),
        Attribute(
            "gender",
            Kind.ENUM,
            "gender",
            "female, male, other or unknown.",
            values=_enum("female", "male", "other", "unknown"),
        ),
        _subscription("email"),
        _subscription("sms"),
        _subscription("line"),
        _subscription("postal"),
        Attribute(
            "rfm_group",
            Kind.ENUM,
            "rfm_group",
            "RFM group; no value before the first purchase.",
            True,
            values=_enum(*RFM_GROUP_VALUES),
        ),
        Attribute(
            "lifecycle_stage",
            Kind.ENUM,
            "lifecycle_stage",
            "Lifecycle stage.",
            values=_enum(*LIFECYCLE_VALUES),
        ),
        Attribute(
            "channel_mix",
            Kind.ENUM,
            "channel_mix",
            "Where the person buys: none, store_only, ec_only or both.",
            values=_enum("none", "store_only", "ec_only", "both"),
        ),
        Attribute(
            "predicted_clv",
            Kind.NUMBER,
            "predicted_clv",
            "Predicted customer lifetime value (BG/NBD and Gamma-Gamma).",
            True,
        ),
        Attribute(
            "points_balance",
            Kind.NUMBER,
            "points_balance",
            "Points in the shared wallet.",
            integer=True,
        ),
    )
}

# Names people reach for that are not attributes: suggested, never accepted.
_HINTS = {
    "tags": "customer_tags",
    "tag": "customer_tags",
    "orders": "number_of_orders",
    "order_count": "number_of_orders",
    "spent": "amount_spent",
    "total_spent": "amount_spent",
    "channels": "channel",
    "stores": "store",
    "location": "store",
    "created_at": "customer_added_date",
    "abandoned_cart": "abandoned_checkout_date",
    "cart_abandoned": "abandoned_checkout_date",
    "birth_date": "age",
    "birthday": "age",
    "clv": "predicted_clv",
    "ltv": "predicted_clv",
    "points": "points_balance",
    "rfm": "rfm_group",
    "lifecycle": "lifecycle_stage",
    "stage": "lifecycle_stage",
}

KEYWORDS = frozenset({"AND", "OR", "NOT", "BETWEEN", "CONTAINS", "IS", "NULL"})

# -- AST -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RelativeDate:
    """A day relative to the shop's today: -30d, +2w, -3m, -1y, today, yesterday."""

    amount: int
    unit: str  # d, w, m or y

    def resolve(self, today: dt.date) -> dt.date:
        return shift(today, self.amount, self.unit)


Value = int | float | str | dt.date | RelativeDate


@dataclass(frozen=True)
class Condition:
    """``attribute op values``; values are already checked and normalised (an ENUM's
    stored value, an int for a whole-number attribute)."""

    attribute: Attribute
    op: Op
    values: tuple[Value, ...] = ()
    position: int = field(default=0, compare=False)


@dataclass(frozen=True)
class And:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    item: Node


Node = Condition | And | Or | Not

# -- tokenizer -----------------------------------------------------------------------------

# A value must end at a delimiter: whitespace, a parenthesis, a quote, an operator or the end.
_END = r"(?![^\s()'=!<>])"
_TOKEN = re.compile(
    rf"""
      (?P<space>\s+)
    | (?P<date>[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}){_END}
    | (?P<offset>[+-][0-9]+[dwmyDWMY]){_END}
    | (?P<ago>[0-9]+_(?i:days|weeks|months|years)_(?i:ago)){_END}
    | (?P<number>[+-]?(?:[0-9]+(?:\.[0-9]+)?|\.[0-9]+)){_END}
    | (?P<string>'(?:[^']|'')*')
    | (?P<unclosed>')
    | (?P<op><=|>=|!=|<>|=|<|>)
    | (?P<lparen>\()
    | (?P<rparen>\))
    | (?P<word>[A-Za-z_][A-Za-z0-9_]*){_END}
    | (?P<bad>[^\s()'=!<>]+|.)
    """,
    re.VERBOSE,
)


@dataclass(frozen=True)
class Token:
    kind: str  # date offset ago number string op lparen rparen word bad end
    text: str
    position: int

    @property
    def keyword(self) -> str | None:
        """The keyword this word is (upper case), if it is one."""
        upper = self.text.upper()
        return upper if self.kind == "word" and upper in KEYWORDS else None

    def describe(self) -> str:
        return "the end" if self.kind == "end" else repr(self.text)


def tokenize(expression: str) -> list[Token]:
    """The tokens of ``expression``, ending with an ``end`` token."""
    if len(expression) > MAX_LENGTH:
        raise SegmentSyntaxError(
            f"expression too long: at most {MAX_LENGTH:,} characters ({len(expression):,})",
            expression,
            MAX_LENGTH,
        )
    tokens: list[Token] = []
    position = 0
    while position < len(expression):
        match = _TOKEN.match(expression, position)
        assert match is not None and match.lastgroup is not None  # 'bad' matches anything
        kind = match.lastgroup
        if kind == "unclosed":
            raise SegmentSyntaxError(
                "unclosed string: a closing ' is missing (write '' for a quote inside)",
                expression,
                position,
                len(expression) - position,
            )
        if kind != "space":
            tokens.append(Token(kind, match.group(), position))
        position = match.end()
    tokens.append(Token("end", "", len(expression)))
    return tokens


# -- parser --------------------------------------------------------------------------------


def parse(expression: str) -> Node:
    """The AST of ``expression``; raises SegmentSyntaxError pointing at what is wrong."""
    return _Parser(expression).parse()


class _Parser:
    def __init__(self, expression: str) -> None:
        self.expression = expression
        self.tokens = tokenize(expression)
        self.index = 0
        self.depth = 0  # parentheses and NOTs open around the current token
        self.conditions = 0

    # helpers

    def peek(self) -> Token:
        return self.tokens[self.index]

    def take(self) -> Token:
        token = self.tokens[self.index]
        if token.kind != "end":
            self.index += 1
        return token

    def fail(self, message: str, token: Token) -> NoReturn:
        raise SegmentSyntaxError(message, self.expression, token.position, len(token.text))

    def at_keyword(self, keyword: str) -> bool:
        return self.peek().keyword == keyword

    # grammar: or := and (OR and)* ; and := not (AND not)* ; not := NOT not | primary

    def parse(self) -> Node:
        if self.peek().kind == "end":
            self.fail(
                "empty expression: write a condition such as number_of_orders > 0", self.peek()
            )
        node = self.or_()
        token = self.peek()
        if token.kind == "rparen":
            self.fail("unmatched ')'", token)
        if token.kind != "end":
            self.fail(f"unexpected {token.describe()}: expected AND, OR or the end", token)
        return node

    def or_(self) -> Node:
        items = [self.and_()]
        while self.at_keyword("OR"):
            self.take()
            items.append(self.and_())
        return items[0] if len(items) == 1 else Or(tuple(items))

    def and_(self) -> Node:
        items = [self.not_()]
        while self.at_keyword("AND"):
            self.take()
            items.append(self.not_())
        return items[0] if len(items) == 1 else And(tuple(items))

    def not_(self) -> Node:
        if self.at_keyword("NOT"):
            self.enter(self.take())
            node = Not(self.not_())
            self.depth -= 1
            return node
        return self.primary()

    def enter(self, token: Token) -> None:
        """One more level of nesting at ``token``, within MAX_DEPTH."""
        self.depth += 1
        if self.depth > MAX_DEPTH:
            self.fail(
                f"nested too deeply: at most {MAX_DEPTH} parentheses and NOTs inside one another",
                token,
            )

    def primary(self) -> Node:
        token = self.peek()
        if token.kind == "lparen":
            self.enter(self.take())
            node = self.or_()
            closing = self.peek()
            if closing.kind == "rparen":
                self.take()
                self.depth -= 1
                return node
            if closing.kind == "end":
                self.fail("unclosed parenthesis: a ')' is missing", token)
            self.fail(f"unexpected {closing.describe()}: expected AND, OR or ')'", closing)
        if token.kind == "word" and token.keyword is None:
            return self.condition()
        if token.kind == "end":
            self.fail("expected a condition, found the end", token)
        self.fail(f"expected an attribute name, found {token.describe()}", token)

    def condition(self) -> Condition:
        name_token = self.take()
        self.conditions += 1
        if self.conditions > MAX_CONDITIONS:
            self.fail(f"too many conditions: at most {MAX_CONDITIONS}", name_token)
        attribute = self.attribute(name_token)
        op_token = self.peek()
        op = self.operator(attribute)
        if op not in attribute.operators:
            self.wrong_operator(attribute, op, op_token)
        if op in _NULLS:
            return Condition(attribute, op, (), name_token.position)
        first = self.value(attribute, op)
        if op is not Op.BETWEEN:
            return Condition(attribute, op, (first,), name_token.position)
        if not self.at_keyword("AND"):
            found = self.peek()
            self.fail(f"expected AND after BETWEEN's first value, found {found.describe()}", found)
        self.take()
        second = self.value(attribute, op)
        return Condition(attribute, op, (first, second), name_token.position)

    def attribute(self, token: Token) -> Attribute:
        name = token.text.lower()
        if name in ATTRIBUTES:
            return ATTRIBUTES[name]
        suggestion = _HINTS.get(name) or next(
            iter(difflib.get_close_matches(name, list(ATTRIBUTES), n=1, cutoff=0.6)), None
        )
        hint = f" (did you mean {suggestion}?)" if suggestion else ""
        self.fail(f"unknown attribute {token.text!r}{hint}", token)

    def operator(self, attribute: Attribute) -> Op:
        token = self.take()
        if token.kind == "op":
            return Op.NE if token.text == "<>" else Op(token.text)
        keyword = token.keyword
        if keyword in ("BETWEEN", "CONTAINS"):
            return Op(keyword)
        if keyword == "NOT":
            after = self.take()
            if after.keyword != "CONTAINS":
                self.fail(f"expected CONTAINS after NOT, found {after.describe()}", after)
            return Op.NOT_CONTAINS
        if keyword == "IS":
            negated = self.at_keyword("NOT")
            if negated:
                self.take()
            after = self.take()
            if after.keyword != "NULL":
                self.fail(f"expected NULL after IS, found {after.describe()}", after)
            return Op.IS_NOT_NULL if negated else Op.IS_NULL
        allowed = ", ".join(attribute.operators)
        self.fail(
            f"expected an operator after {attribute.name} ({allowed}), found {token.describe()}",
            token,
        )

    def wrong_operator(self, attribute: Attribute, op: Op, token: Token) -> NoReturn:
        allowed = ", ".join(attribute.operators)
        if op in _NULLS and attribute.kind is not Kind.LIST:
            why = f"{attribute.name} always has a value"
        else:
            why = f"{op} does not apply to {attribute.name} ({_KIND_TEXT[attribute.kind]})"
        span = self.tokens[self.index - 1].position + len(self.tokens[self.index - 1].text)
        raise SegmentSyntaxError(
            f"{why}: use {allowed}", self.expression, token.position, span - token.position
        )

    # values

    def value(self, attribute: Attribute, op: Op) -> Value:
        token = self.take()
        if token.kind == "end":
            self.fail(f"expected a value for {attribute.name} after {op}, found the end", token)
        if attribute.kind in (Kind.NUMBER, Kind.AGE):
            return self.number(attribute, token)
        if attribute.kind is Kind.DATE:
            return self.date(attribute, token)
        if attribute.kind is Kind.ENUM:
            return self.enum(attribute, token)
        return self.text(attribute, token)

    def number(self, attribute: Attribute, token: Token) -> int | float:
        if token.kind != "number":
            if token.kind == "string":
                self.fail(f"{attribute.name} takes a number, not text", token)
            if token.kind == "bad" and re.fullmatch(r"[0-9.,]+", token.text):
                self.fail(f"bad number {token.text!r}: write it without separators", token)
            self.fail(f"{attribute.name} takes a number, found {token.describe()}", token)
        try:
            number = Decimal(token.text)
        except InvalidOperation:  # pragma: no cover - the token pattern only lets numbers in
            self.fail(f"bad number {token.text!r}", token)
        if attribute.integer and number != number.to_integral_value():
            self.fail(f"{attribute.name} takes a whole number", token)
        if attribute.minimum is not None and number < attribute.minimum:
            self.fail(f"{attribute.name} is at least {attribute.minimum}", token)
        if attribute.maximum is not None and number > attribute.maximum:
            self.fail(f"{attribute.name} is at most {attribute.maximum}", token)
        column = profiles.c[attribute.column].type
        if isinstance(column, Integer):
            low, high = _integer_range(column)
            if not low <= number <= high:
                self.fail(f"{attribute.name} is a whole number from {low} to {high}", token)
        elif isinstance(column, Float):
            digits = len(number.normalize().as_tuple().digits)
            if abs(number) >= _FLOAT_LIMIT:
                self.fail(f"{attribute.name} is less than {_FLOAT_LIMIT:,} in size", token)
            if digits > _FLOAT_DIGITS:
                self.fail(
                    f"{attribute.name} keeps {_FLOAT_DIGITS} significant digits: "
                    f"{token.text} has {digits}",
                    token,
                )
        return int(number) if attribute.integer else float(number)

    def date(self, attribute: Attribute, token: Token) -> dt.date | RelativeDate:
        forms = "a date such as 2024-01-31, -30d, -2w, -3m, -1y, today or yesterday"
        if token.kind == "date":
            try:
                day = dt.date.fromisoformat(token.text)
            except ValueError:
                self.fail(f"no such date {token.text!r}", token)
            if not _FIRST_DAY <= day <= _LAST_DAY:
                self.fail(f"date {token.text} is out of range (1900-01-01 to 2999-12-31)", token)
            return day
        if token.kind == "offset":
            return self.relative(token, int(token.text[:-1]), token.text[-1].lower())
        if token.kind == "ago":
            count, unit = token.text.lower().split("_")[:2]
            return self.relative(token, -int(count), unit[0])
        if token.kind == "word" and token.text.lower() in ("today", "yesterday"):
            return RelativeDate(0 if token.text.lower() == "today" else -1, "d")
        if token.kind == "bad" and re.fullmatch(r"[0-9]+[dwmy]", token.text, re.IGNORECASE):
            self.fail(f"bad date {token.text!r}: write -{token.text} for the past", token)
        if token.kind == "string":
            self.fail(f"{attribute.name} takes {forms}, without quotes", token)
        self.fail(f"{attribute.name} takes {forms}, found {token.describe()}", token)

    def relative(self, token: Token, amount: int, unit: str) -> RelativeDate:
        if abs(amount) > _RELATIVE_LIMIT[unit]:
            self.fail(f"date offset {token.text!r} is too far (at most 200 years)", token)
        return RelativeDate(amount, unit)

    def check_text(self, attribute: Attribute, value: str, token: Token) -> None:
        """``value`` fits the column ``attribute`` compares it with."""
        bad = next((i for i, ch in enumerate(value) if _is_control(ch)), None)
        if bad is not None:
            raise SegmentSyntaxError(
                f"{attribute.name}: text cannot hold the control character U+{ord(value[bad]):04X}",
                self.expression,
                token.position + 1 + bad,
            )
        column = (
            profile_values.c.value if attribute.kind is Kind.LIST else profiles.c[attribute.column]
        ).type
        limit = column.length if isinstance(column, String) else None
        if limit is not None and len(value) > limit:
            self.fail(
                f"{attribute.name} holds at most {limit} characters ({len(value)} given)", token
            )

    def enum(self, attribute: Attribute, token: Token) -> str:
        if token.kind == "string":
            raw = token.text[1:-1].replace("''", "'")
        elif token.kind == "word":
            raw = token.text
        else:
            self.fail(f"{attribute.name} takes a name, found {token.describe()}", token)
        key = raw.strip().lower().replace("-", "_").replace(" ", "_")
        values = attribute.value_map
        if key in values:
            return values[key]
        shown = [name.upper() if attribute.name.endswith("_status") else name for name in values]
        close = difflib.get_close_matches(key, list(values), n=1, cutoff=0.6)
        hint = ""
        if close:
            hint = f" (did you mean {shown[list(values).index(close[0])]}?)"
        self.fail(
            f"unknown {attribute.name} {raw!r}{hint}: one of {', '.join(shown)}",
            token,
        )

    def text(self, attribute: Attribute, token: Token) -> str:
        if token.kind == "string":
            value = token.text[1:-1].replace("''", "'")
            self.check_text(attribute, value, token)
            return value
        if token.kind in ("word", "bad"):
            self.fail(
                f"{attribute.name} takes text in single quotes: '{token.text}'",
                token,
            )
        self.fail(f"{attribute.name} takes text in single quotes, found {token.describe()}", token)


def _integer_range(column: Integer) -> tuple[int, int]:
    """The values an integer column holds on every backend (PostgreSQL's sizes)."""
    bits = 16 if isinstance(column, sqltypes.SmallInteger) else 32
    if isinstance(column, sqltypes.BigInteger):
        bits = 64
    return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1


# A float column keeps about 15 significant decimal digits; money here is far below 1e15.
_FLOAT_DIGITS = 15
_FLOAT_LIMIT = 10**15

_FIRST_DAY = dt.date(1900, 1, 1)
_LAST_DAY = dt.date(2999, 12, 31)
_RELATIVE_LIMIT = {"d": 73_000, "w": 10_400, "m": 2_400, "y": 200}
