"""Email templates: Jinja2 in a sandbox, where an unknown name is an error that names it.

An operator writes a subject, a text body and optionally an HTML body. The HTML part
escapes what it inserts; the text part and the subject do not. Templates run in
Jinja2's :class:`~jinja2.sandbox.SandboxedEnvironment` (an operator's template cannot
reach Python's internals) with :class:`~jinja2.StrictUndefined` (a missing field is an
error, never an empty string in front of a customer).

The fields are the caller's: a campaign gives each customer's (``name``, ``points``,
``last_purchase``, ``coupon_code``, ...) and checks its templates against the names it
can give with :meth:`EmailRenderer.check` before sending anything. Filters for Japanese
mail: ``{{ name|sama }}`` (山田 花子 様; お客様 without a name), ``{{ 1200|yen }}``
(1,200円), ``{{ points|number }}`` (1,200), ``{{ day|date_ja }}`` (2026年12月2日).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Collection, Iterator, Mapping
from decimal import Decimal
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateSyntaxError, UndefinedError, meta, nodes
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment

from omnicrm import MessageParts
from omnicrm.errors import TemplateError

HONORIFIC = "様"
NO_NAME = "お客様"
_UNDEFINED_NAME = re.compile(r"^'([^']+)' is undefined$")
_CACHE_SIZE = 256  # distinct templates kept compiled (a campaign has a handful)


def sama(name: object) -> str:
    """A name with the honorific 様 (山田 花子 様); お客様 when there is no name."""
    text = "" if name is None else " ".join(str(name).split())
    if not text:
        return NO_NAME
    return text if text.endswith(HONORIFIC) else f"{text} {HONORIFIC}"


def number(value: object) -> str:
    """An integer amount with thousands separators: 12,345."""
    return f"{_integer(value):,}"


def yen(value: object) -> str:
    """An amount of yen as Japanese mail writes it: 12,345円."""
    return f"{_integer(value):,}円"


def date_ja(value: object) -> str:
    """A date as 2026年12月2日 (a date, a datetime or an ISO 8601 string)."""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if isinstance(value, dt.datetime | dt.date):
        return f"{value.year}年{value.month}月{value.day}日"
    raise TypeError(f"date_ja needs a date, not {type(value).__name__}")


def _integer(value: object) -> int:
    if type(value) is int:
        return value
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal | str):
        raise TypeError(f"needs a number, not {type(value).__name__}")
    return round(Decimal(str(value).replace(",", "")))


def _environment(*, html: bool) -> SandboxedEnvironment:
    env = SandboxedEnvironment(
        undefined=StrictUndefined, autoescape=html, keep_trailing_newline=True
    )
    env.filters.update(sama=sama, number=number, yen=yen, date_ja=date_ja)
    return env


_PARTS = ("subject", "body", "html")


class EmailRenderer:
    """Checks and renders email templates (a :class:`omnicrm.Renderer`)."""

    def __init__(self) -> None:
        self._text = _environment(html=False)
        self._html = _environment(html=True)
        self._compiled: dict[tuple[str, str], Template] = {}

    def _env(self, part: str) -> SandboxedEnvironment:
        return self._html if part == "html" else self._text

    def names(self, template: MessageParts) -> dict[str, set[str]]:
        """The fields each part uses, by part; a TemplateError if one does not parse."""
        found: dict[str, set[str]] = {}
        for part, source in _sources(template):
            found[part] = meta.find_undeclared_variables(self._parse(part, source))
        return found

    def check(self, template: MessageParts, fields: Collection[str]) -> None:
        """Raise TemplateError if a part does not parse or uses a name not in ``fields``."""
        available = set(fields)
        if not template.body.strip():
            raise TemplateError("the text body is empty", part="body")
        if template.subject is None or not template.subject.strip():
            raise TemplateError("an email needs a subject", part="subject")
        for part, source in _sources(template):
            tree = self._parse(part, source)
            unknown = sorted(meta.find_undeclared_variables(tree) - available)
            if unknown:
                line = min(
                    (n.lineno for n in tree.find_all(nodes.Name) if n.name in unknown),
                    default=None,
                )
                known = ", ".join(sorted(available)) or "none"
                raise TemplateError(
                    f"unknown field(s) {', '.join(unknown)} (available: {known})",
                    part=part,
                    line=line,
                    names=tuple(unknown),
                )

    def render(self, template: MessageParts, fields: Mapping[str, Any]) -> MessageParts:
        """The parts rendered for one customer. The subject is made one line."""
        rendered = {part: self._render(part, source, fields) for part, source in _sources(template)}
        subject = rendered.get("subject")
        return MessageParts(
            body=rendered["body"],
            subject=" ".join(subject.split()) if subject is not None else None,
            html=rendered.get("html"),
        )

    def _parse(self, part: str, source: str) -> nodes.Template:
        try:
            return self._env(part).parse(source)
        except TemplateSyntaxError as exc:
            raise TemplateError(exc.message or "syntax error", part=part, line=exc.lineno) from None

    def _compile(self, part: str, source: str) -> Template:
        key = ("html" if part == "html" else "text", source)
        compiled = self._compiled.get(key)
        if compiled is None:
            try:
                compiled = self._env(part).from_string(source)
            except TemplateSyntaxError as exc:
                raise TemplateError(
                    exc.message or "syntax error", part=part, line=exc.lineno
                ) from None
            if len(self._compiled) >= _CACHE_SIZE:
                self._compiled.pop(next(iter(self._compiled)))
            self._compiled[key] = compiled
        return compiled

    def _render(self, part: str, source: str, fields: Mapping[str, Any]) -> str:
        compiled = self._compile(part, source)
        try:
            return compiled.render(fields)
        except UndefinedError as exc:
            reason = str(exc.message or exc)
            match = _UNDEFINED_NAME.match(reason)
            names = (match.group(1),) if match else ()
            raise TemplateError(
                f"undefined: {reason}", part=part, line=_template_line(exc), names=names
            ) from None
        except SecurityError as exc:
            raise TemplateError(
                f"refused by the sandbox: {exc.message or exc}",
                part=part,
                line=_template_line(exc),
            ) from None
        except (TypeError, ValueError, ArithmeticError, LookupError) as exc:
            raise TemplateError(
                f"{type(exc).__name__}: {exc}", part=part, line=_template_line(exc)
            ) from None


def _sources(template: MessageParts) -> Iterator[tuple[str, str]]:
    for part in _PARTS:
        source = getattr(template, part)
        if source is not None:
            yield part, source


def _template_line(exc: BaseException) -> int | None:
    """The template line an error was raised at (Jinja rewrites the traceback so)."""
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line
