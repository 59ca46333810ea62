"""Email templates: sandboxed, strict about names, escaping only in HTML."""

from __future__ import annotations

import datetime as dt

import pytest

from omnicrm import MessageParts
from omnicrm.errors import TemplateError
from omnicrm.plugins.email.templates import EmailRenderer, date_ja, sama, yen

FIELDS = ["name", "points", "last_purchase", "coupon_code"]


def test_check_names_the_unknown_field_its_part_and_line() -> None:
    template = MessageParts(
        subject="{{ name|sama }}へ",
        body="{{ name|sama }}\nポイント: {{ points }}\n\nクーポン: {{ coupon }}\n",
    )
    with pytest.raises(TemplateError) as caught:
        EmailRenderer().check(template, FIELDS)
    error = caught.value
    assert (error.part, error.line, error.names) == ("body", 4, ("coupon",))
    assert str(error) == (
        "body line 4: unknown field(s) coupon (available: coupon_code, last_purchase, name, points)"
    )


def test_check_finds_names_in_every_part() -> None:
    renderer = EmailRenderer()
    ok = MessageParts(subject="{{ name }}", body="{{ points }}", html="<p>{{ coupon_code }}</p>")
    renderer.check(ok, FIELDS)
    bad_html = MessageParts(subject="x", body="y", html="<p>\n{% if vip %}VIP{% endif %}</p>")
    with pytest.raises(TemplateError) as caught:
        renderer.check(bad_html, FIELDS)
    assert (caught.value.part, caught.value.line, caught.value.names) == ("html", 2, ("vip",))
    # A name the template sets itself, or a loop variable, is not a field.
    loop = MessageParts(subject="x", body="{% for p in last_purchase %}{{ p }}{% endfor %}")
    renderer.check(loop, FIELDS)
    assert renderer.names(ok) == {"subject": {"name"}, "body": {"points"}, "html": {"coupon_code"}}


def test_check_refuses_a_syntax_error_an_empty_body_and_no_subject() -> None:
    renderer = EmailRenderer()
    with pytest.raises(TemplateError, match=r"^body line 2: unexpected '}'"):
        renderer.check(MessageParts(subject="x", body="ok\n{{ name }"), FIELDS)
    with pytest.raises(TemplateError, match="the text body is empty"):
        renderer.check(MessageParts(subject="x", body="  \n"), FIELDS)
    with pytest.raises(TemplateError, match="an email needs a subject"):
        renderer.check(MessageParts(body="x"), FIELDS)


def test_render_escapes_html_only() -> None:
    parts = EmailRenderer().render(
        MessageParts(subject="{{ c }}", body="{{ c }}", html="<p>{{ c }}</p>"),
        {"c": "<b>&特価</b>"},
    )
    assert parts == MessageParts(
        subject="<b>&特価</b>", body="<b>&特価</b>", html="<p>&lt;b&gt;&amp;特価&lt;/b&gt;</p>"
    )


def test_render_makes_the_subject_one_line() -> None:
    parts = EmailRenderer().render(
        MessageParts(subject="{{ a }}\n{{ b }}", body="x"), {"a": "一", "b": "二"}
    )
    assert parts.subject == "一 二"


def test_render_of_a_missing_field_names_it() -> None:
    with pytest.raises(TemplateError) as caught:
        EmailRenderer().render(MessageParts(subject="x", body="a\n{{ points }}"), {"name": "x"})
    assert caught.value.names == ("points",)
    assert caught.value.part == "body" and caught.value.line == 2
    assert "'points' is undefined" in str(caught.value)
    # An attribute missing from a field given is an error too, not an empty string.
    with pytest.raises(TemplateError, match="has no attribute 'date'"):
        EmailRenderer().render(
            MessageParts(subject="x", body="{{ last_purchase.date }}"),
            {"last_purchase": {"product": "茶"}},
        )


def test_the_sandbox_keeps_python_out_of_reach() -> None:
    renderer = EmailRenderer()
    for source in (
        "{{ name.__class__.__mro__ }}",
        "{{ ''.__class__.__subclasses__() }}",
        "{{ name.format.__globals__ }}",
    ):
        with pytest.raises(TemplateError):
            renderer.render(MessageParts(subject="x", body=source), {"name": "x"})


def test_japanese_filters() -> None:
    assert sama("山田　花子") == "山田 花子 様"
    assert sama("山田 花子 様") == "山田 花子 様"
    assert sama("") == sama(None) == "お客様"
    assert yen(12345) == "12,345円"
    assert yen("1,200") == "1,200円"
    assert date_ja(dt.date(2026, 12, 2)) == date_ja("2026-12-02T10:00:00+09:00") == "2026年12月2日"
    with pytest.raises(TemplateError, match=r"body line 1: TypeError: needs a number, not dict"):
        EmailRenderer().render(MessageParts(subject="x", body="{{ p|yen }}"), {"p": {}})
