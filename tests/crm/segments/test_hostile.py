"""Any string either selects profiles on SQLite and PostgreSQL alike or raises the
language's own error, pointing into the expression: never another exception."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from omnicrm.core.store import Store
from omnicrm.crm.schema import profiles
from omnicrm.crm.segments.compile import compile_expression
from omnicrm.crm.segments.language import ATTRIBUTES, KEYWORDS, SegmentSyntaxError
from tests.crm.segments.profiles import NOW, TOKYO, populate

WORDS = [*ATTRIBUTES, *KEYWORDS, "today", "yesterday", "champions", "female", "SUBSCRIBED"]
OPERATORS = ["=", "!=", "<>", "<", "<=", ">", ">=", "(", ")", "BETWEEN", "AND", "CONTAINS"]


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


numbers = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.integers(0, 30)
    .flatmap(lambda places: st.decimals(allow_nan=False, allow_infinity=False, places=places))
    .map(lambda d: format(d, "f")),
    st.sampled_from(["2147483647", "2147483648", "-2147483649", "9" * 40, ".5", "0.000"]),
)
dates = st.one_of(
    st.dates().map(lambda d: d.isoformat()),
    st.integers(-(10**6), 10**6).flatmap(
        lambda n: st.sampled_from([f"{n:+d}{u}" for u in "dwmy"] + [f"{abs(n)}_days_ago"])
    ),
)
texts = st.text(max_size=300).map(_quoted)
token = st.one_of(st.sampled_from(WORDS + OPERATORS), numbers, dates, texts, st.text(max_size=5))
soup = st.lists(token, max_size=40).flatmap(
    lambda parts: st.sampled_from([" ".join(parts), "".join(parts)])
)


@st.composite
def conditions(draw: st.DrawFn) -> str:
    """A condition of a real attribute and operator, with any value."""
    attribute = draw(st.sampled_from(list(ATTRIBUTES.values())))
    op = draw(st.sampled_from(attribute.operators))
    value = draw(st.one_of(numbers, dates, texts, st.sampled_from(WORDS)))
    if op == "BETWEEN":
        return f"{attribute.name} BETWEEN {value} AND {draw(numbers)}"
    if op in ("IS NULL", "IS NOT NULL"):
        return f"{attribute.name} {op}"
    return f"{attribute.name} {op} {value}"


structured = st.recursive(
    conditions(),
    lambda inner: st.one_of(
        st.lists(inner, min_size=2, max_size=6).map(lambda xs: "(" + " OR ".join(xs) + ")"),
        st.lists(inner, min_size=2, max_size=6).map(lambda xs: " AND ".join(xs)),
        inner.map(lambda x: f"NOT ({x})"),
    ),
    max_leaves=40,
)
# Sizes around the limits: deep nesting, long chains.
big = st.one_of(
    st.integers(1, 600).map(lambda n: "(" * n + "age > 1" + ")" * n),
    st.integers(1, 1200).map(lambda n: " OR ".join(["number_of_orders > 1"] * n)),
    st.integers(1, 600).map(lambda n: "NOT " * n + "age > 1"),
)


@pytest.fixture
def populated(store: Store) -> Store:
    with store.engine.begin() as conn:
        populate(conn, 20)
    return store


@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(expression=st.one_of(soup, structured, big))
def test_any_string_runs_or_raises_the_language_error(populated: Store, expression: str) -> None:
    try:
        condition = compile_expression(expression, NOW, TOKYO)
    except SegmentSyntaxError as exc:
        assert 0 <= exc.position <= len(expression)
        str(exc)  # the caret rendering never fails either
        return
    with populated.engine.connect() as conn:
        count = conn.execute(select(func.count()).select_from(profiles).where(condition)).scalar()
    assert count is not None and 0 <= count <= 20
