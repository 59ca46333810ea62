"""The segment language's tokenizer and parser: the AST of good expressions, and the
message and position of every kind of mistake."""

from __future__ import annotations

import datetime as dt

import pytest

from omnicrm.crm.segments.language import (
    ATTRIBUTES,
    And,
    Condition,
    Node,
    Not,
    Op,
    Or,
    RelativeDate,
    SegmentSyntaxError,
    parse,
)


def show(node: Node) -> str:
    """A compact s-expression of an AST, to compare against."""
    if isinstance(node, And | Or):
        word = "AND" if isinstance(node, And) else "OR"
        return f"({word} {' '.join(show(item) for item in node.items)})"
    if isinstance(node, Not):
        return f"(NOT {show(node.item)})"
    assert isinstance(node, Condition)

    def value(v: object) -> str:
        if isinstance(v, RelativeDate):
            return f"{v.amount:+d}{v.unit}"
        if isinstance(v, dt.date):
            return v.isoformat()
        return repr(v)

    parts = [node.attribute.name, str(node.op), *map(value, node.values)]
    return "[" + " ".join(parts) + "]"


@pytest.mark.parametrize(
    ("expression", "tree"),
    [
        ("number_of_orders > 0", "[number_of_orders > 0]"),
        ("amount_spent >= 1000.50", "[amount_spent >= 1000.5]"),
        ("points_balance < -10", "[points_balance < -10]"),
        ("amount_spent BETWEEN 1 AND 999.99", "[amount_spent BETWEEN 1.0 999.99]"),
        ("last_order_date > -30d", "[last_order_date > -30d]"),
        ("last_order_date >= -2w", "[last_order_date >= -2w]"),
        ("first_order_date <= -3M", "[first_order_date <= -3m]"),
        ("customer_added_date < -1y", "[customer_added_date < -1y]"),
        ("last_order_date = today", "[last_order_date = +0d]"),
        ("last_order_date = YESTERDAY", "[last_order_date = -1d]"),
        ("last_order_date >= 30_days_ago", "[last_order_date >= -30d]"),
        ("last_order_date >= 12_months_ago", "[last_order_date >= -12m]"),
        ("last_order_date BETWEEN today AND +7d", "[last_order_date BETWEEN +0d +7d]"),
        ("first_order_date = 2024-01-31", "[first_order_date = 2024-01-31]"),
        ("customer_tags CONTAINS 'vip'", "[customer_tags CONTAINS 'vip']"),
        ("customer_tags NOT CONTAINS 'it''s'", '[customer_tags NOT CONTAINS "it\'s"]'),
        ("channel contains 'pos'", "[channel CONTAINS 'pos']"),
        ("store IS NULL", "[store IS NULL]"),
        ("connection is not null", "[connection IS NOT NULL]"),
        ("prefecture = '東京都'", "[prefecture = '東京都']"),
        ("prefecture != '大阪府'", "[prefecture != '大阪府']"),
        ("prefecture <> '大阪府'", "[prefecture != '大阪府']"),
        ("age BETWEEN 30 AND 39", "[age BETWEEN 30 39]"),
        ("gender = 'female'", "[gender = 'female']"),
        ("gender = MALE", "[gender = 'male']"),
        ("email_subscription_status = 'SUBSCRIBED'", "[email_subscription_status = 'opted_in']"),
        ("sms_subscription_status = NOT_SUBSCRIBED", "[sms_subscription_status = 'unknown']"),
        ("line_subscription_status = 'pending'", "[line_subscription_status = 'pending']"),
        (
            "postal_subscription_status != UNSUBSCRIBED",
            "[postal_subscription_status != 'opted_out']",
        ),
        ("rfm_group = CHAMPIONS", "[rfm_group = 'champions']"),
        ("rfm_group = 'potential-loyalist'", "[rfm_group = 'potential_loyalist']"),
        ("rfm_group IS NULL", "[rfm_group IS NULL]"),
        (
            "lifecycle_stage = second_purchase_candidate",
            "[lifecycle_stage = 'second_purchase_candidate']",
        ),
        ("channel_mix = both", "[channel_mix = 'both']"),
        ("predicted_clv > 5000", "[predicted_clv > 5000.0]"),
        ("predicted_clv IS NOT NULL", "[predicted_clv IS NOT NULL]"),
        # Attribute names and keywords in any case; any whitespace (a full-width space too).
        ("Number_Of_Orders>0", "[number_of_orders > 0]"),
        ("number_of_orders\u3000>\n0", "[number_of_orders > 0]"),
    ],
)
def test_a_condition_parses_to_its_typed_values(expression: str, tree: str) -> None:
    assert show(parse(expression)) == tree


@pytest.mark.parametrize(
    ("expression", "tree"),
    [
        # AND binds tighter than OR.
        (
            "number_of_orders > 1 OR amount_spent > 2 AND age > 3",
            "(OR [number_of_orders > 1] (AND [amount_spent > 2.0] [age > 3]))",
        ),
        # NOT binds tighter than AND.
        (
            "NOT number_of_orders > 1 AND age > 3",
            "(AND (NOT [number_of_orders > 1]) [age > 3])",
        ),
        (
            "not (number_of_orders > 1 and age > 3) or gender = male",
            "(OR (NOT (AND [number_of_orders > 1] [age > 3])) [gender = 'male'])",
        ),
        ("NOT NOT age > 3", "(NOT (NOT [age > 3]))"),
        (
            "number_of_orders > 1 AND age > 2 AND age < 9",
            "(AND [number_of_orders > 1] [age > 2] [age < 9])",
        ),
        # BETWEEN's AND is its own, not a conjunction.
        (
            "age BETWEEN 20 AND 29 AND gender = female",
            "(AND [age BETWEEN 20 29] [gender = 'female'])",
        ),
        (
            "((customer_tags CONTAINS 'vip'))",
            "[customer_tags CONTAINS 'vip']",
        ),
        (
            "(age > 1 OR age < 0) AND (gender = male OR NOT channel CONTAINS 'pos')",
            "(AND (OR [age > 1] [age < 0]) (OR [gender = 'male'] (NOT [channel CONTAINS 'pos'])))",
        ),
    ],
)
def test_precedence_not_over_and_over_or(expression: str, tree: str) -> None:
    assert show(parse(expression)) == tree


def test_every_attribute_of_the_brief_is_there() -> None:
    assert set(ATTRIBUTES) >= {
        "number_of_orders",
        "amount_spent",
        "first_order_date",
        "last_order_date",
        "customer_tags",
        "channel",
        "store",
        "connection",
        "prefecture",
        "age",
        "gender",
        "email_subscription_status",
        "sms_subscription_status",
        "line_subscription_status",
        "postal_subscription_status",
        "rfm_group",
        "lifecycle_stage",
        "predicted_clv",
        "points_balance",
        "customer_added_date",
    }


@pytest.mark.parametrize(
    ("expression", "position", "length", "message"),
    [
        ("", 0, 1, "empty expression"),
        ("   ", 3, 1, "empty expression"),
        (
            "numbr_of_orders > 3",
            0,
            15,
            "unknown attribute 'numbr_of_orders' (did you mean number_of_orders?)",
        ),
        (
            "age > 3 AND tags CONTAINS 'x'",
            12,
            4,
            "unknown attribute 'tags' (did you mean customer_tags?)",
        ),
        ("favourite_colour = 'red'", 0, 16, "unknown attribute 'favourite_colour'"),
        ("customer_tags = 'vip'", 14, 1, "= does not apply to customer_tags (a list of values)"),
        ("age CONTAINS 3", 4, 8, "CONTAINS does not apply to age"),
        ("prefecture > 'a'", 11, 1, "> does not apply to prefecture (text)"),
        ("gender BETWEEN male AND female", 7, 7, "BETWEEN does not apply to gender"),
        ("number_of_orders IS NULL", 17, 7, "number_of_orders always has a value"),
        ("amount_spent IS NOT NULL", 13, 11, "amount_spent always has a value"),
        ("number_of_orders > 'three'", 19, 7, "number_of_orders takes a number, not text"),
        ("number_of_orders > 1.5", 19, 3, "number_of_orders takes a whole number"),
        ("amount_spent > 1,000", 15, 5, "bad number '1,000'"),
        ("age >= -1", 7, 2, "age is at least 0"),
        ("age < 200", 6, 3, "age is at most 150"),
        ("last_order_date > 30d", 18, 3, "bad date '30d': write -30d for the past"),
        ("last_order_date > 2024-02-30", 18, 10, "no such date '2024-02-30'"),
        ("last_order_date > 1800-01-01", 18, 10, "out of range"),
        ("last_order_date > '2024-01-01'", 18, 12, "without quotes"),
        ("last_order_date > tomorrow", 18, 8, "last_order_date takes a date"),
        ("last_order_date > -99999d", 18, 7, "too far"),
        ("gender = 'woman'", 9, 7, "unknown gender 'woman': one of female, male, other, unknown"),
        ("rfm_group = champion", 12, 8, "unknown rfm_group 'champion' (did you mean champions?)"),
        (
            "email_subscription_status = 'subscribd'",
            28,
            11,
            "(did you mean SUBSCRIBED?): one of SUBSCRIBED, NOT_SUBSCRIBED, PENDING, UNSUBSCRIBED",
        ),
        ("prefecture = 東京都", 13, 3, "prefecture takes text in single quotes: '東京都'"),
        ("customer_tags CONTAINS vip", 23, 3, "takes text in single quotes: 'vip'"),
        ("customer_tags NOT 'vip'", 18, 5, "expected CONTAINS after NOT, found \"'vip'\""),
        ("predicted_clv IS 3", 17, 1, "expected NULL after IS, found '3'"),
        ("number_of_orders 3", 17, 1, "expected an operator after number_of_orders"),
        (
            "number_of_orders >",
            18,
            1,
            "expected a value for number_of_orders after >, found the end",
        ),
        ("age BETWEEN 1 OR 3", 14, 2, "expected AND after BETWEEN's first value, found 'OR'"),
        ("age > 1 age < 3", 8, 3, "unexpected 'age': expected AND, OR or the end"),
        ("age > 1 AND", 11, 1, "expected a condition, found the end"),
        ("age > 1 AND OR age < 3", 12, 2, "expected an attribute name, found 'OR'"),
        ("(age > 1", 0, 1, "unclosed parenthesis"),
        ("((age > 1) AND (age < 3)", 0, 1, "unclosed parenthesis"),
        ("(age > 1 age < 3)", 9, 3, "unexpected 'age': expected AND, OR or ')'"),
        ("age > 1)", 7, 1, "unmatched ')'"),
        ("()", 1, 1, "expected an attribute name, found ')'"),
        ("prefecture = '東京都", 13, 4, "unclosed string"),
        ("age > 1 & age < 3", 8, 1, "unexpected '&'"),
        ("age ! 3", 4, 1, "expected an operator after age"),
        # Values that do not fit their column, on either backend.
        ("number_of_orders > 2147483648", 19, 10, "from -2147483648 to 2147483647"),
        ("points_balance < -2147483649", 17, 11, "from -2147483648 to 2147483647"),
        ("amount_spent > 1000000000000000", 15, 16, "less than 1,000,000,000,000,000"),
        ("predicted_clv > 0.1234567890123456", 16, 18, "15 significant digits"),
        ("prefecture = 'a\x00b'", 15, 1, "control character U+0000"),
        ("prefecture != 'x\ty'", 16, 1, "control character U+0009"),
        ("customer_tags CONTAINS '\x1b[31m'", 24, 1, "control character U+001B"),
        ("store CONTAINS '\ud800'", 16, 1, "control character U+D800"),
        ("prefecture = '" + "x" * 33 + "'", 13, 35, "at most 32 characters (33 given)"),
        ("channel CONTAINS '" + "x" * 256 + "'", 17, 258, "at most 255 characters"),
        # Size and nesting.
        ("(" * 33 + "age > 1" + ")" * 33, 32, 1, "nested too deeply: at most 32"),
        ("NOT " * 33 + "age > 1", 128, 3, "nested too deeply"),
        (" OR ".join(["age > 1"] * 201), 200 * 11, 3, "too many conditions: at most 200"),
        ("age > 1 OR " + " " * 10_000, 10_000, 1, "too long: at most 10,000 characters"),
    ],
)
def test_a_mistake_points_at_its_token(
    expression: str, position: int, length: int, message: str
) -> None:
    with pytest.raises(SegmentSyntaxError) as caught:
        parse(expression)
    error = caught.value
    assert message in error.message
    assert (error.position, error.length) == (position, length)
    assert error.expression == expression


def test_the_message_shows_a_caret_under_the_token() -> None:
    with pytest.raises(SegmentSyntaxError) as caught:
        parse("number_of_orders > 2 AND last_order_dat > -30d")
    assert str(caught.value) == (
        "unknown attribute 'last_order_dat' (did you mean last_order_date?)\n"
        "  number_of_orders > 2 AND last_order_dat > -30d\n"
        "                           ^^^^^^^^^^^^^^"
    )


def test_the_caret_counts_wide_characters_as_two_columns() -> None:
    # '東京都' takes six terminal columns: the caret must move past them.
    with pytest.raises(SegmentSyntaxError) as caught:
        parse("prefecture = '東京都' AND agee > 3")
    lines = str(caught.value).split("\n")
    assert lines[2] == "  " + " " * 26 + "^^^^"  # 14 + 6 + 6 columns before it


def test_the_caret_at_the_end_of_the_expression() -> None:
    with pytest.raises(SegmentSyntaxError) as caught:
        parse("age >")
    assert str(caught.value).split("\n")[1:] == ["  age >", "       ^"]


def test_a_multi_line_expression_shows_the_line_and_column() -> None:
    expression = "number_of_orders > 2\nAND (gender = female\n     OR rfm_group = best)"
    with pytest.raises(SegmentSyntaxError) as caught:
        parse(expression)
    error = caught.value
    assert error.position == expression.index("best")
    assert str(error) == (
        "unknown rfm_group 'best': one of champions, loyal, potential_loyalist, new, "
        "promising, need_attention, about_to_sleep, at_risk, cannot_lose, hibernating, lost"
        " (line 3, column 21)\n"
        "       OR rfm_group = best)\n"
        "                      ^^^^"
    )


def test_ops_are_the_documented_set() -> None:
    assert [str(op) for op in Op] == [
        "=",
        "!=",
        "<",
        "<=",
        ">",
        ">=",
        "BETWEEN",
        "CONTAINS",
        "NOT CONTAINS",
        "IS NULL",
        "IS NOT NULL",
    ]


def test_the_deepest_and_longest_expressions_allowed_parse() -> None:
    parse("(" * 32 + "age > 1" + ")" * 32)
    parse("NOT " * 32 + "age > 1")
    parse(" OR ".join(["age > 1"] * 200))
    parse("number_of_orders BETWEEN -2147483648 AND 2147483647")
    parse("amount_spent > 123456789012345 AND predicted_clv < 0.12345678901234")


def test_integer_ranges_come_from_the_columns() -> None:
    """Every whole-number attribute is checked against its column's own range."""
    from sqlalchemy import BigInteger, Integer

    from omnicrm.crm.schema import profiles

    for attribute in ATTRIBUTES.values():
        column = profiles.c[attribute.column].type if attribute.kind.value == "number" else None
        if attribute.integer and column is not None:
            assert isinstance(column, Integer)
            high = 2**63 - 1 if isinstance(column, BigInteger) else 2**31 - 1
            parse(f"{attribute.name} = {high}")
            with pytest.raises(SegmentSyntaxError, match="whole number from"):
                parse(f"{attribute.name} = {high + 1}")


def test_a_control_character_is_shown_as_a_space_under_the_caret() -> None:
    with pytest.raises(SegmentSyntaxError) as caught:
        parse("prefecture = 'a\x00b'")
    assert str(caught.value).splitlines()[1:] == ["  prefecture = 'a b'", " " * 17 + "^"]
