"""A message's links, served: the unsubscribe page and one-click POST, the open pixel and
the click redirect. HTTP only; what each does is :mod:`omnicrm.engage.tracking`'s.

- ``GET /u?token=T``: a small page (Japanese and English) with one button; it shows
  nothing of the person, not even the address.
- ``POST /u?token=T``: the unsubscribe, from that button or a mail client's RFC 8058
  one-click POST (body ``List-Unsubscribe=One-Click``); answered with a confirmation.
- ``GET /t/o/T.gif``: a 1x1 GIF that is never cached; the open is counted.
- ``GET /t/c/T?u=URL&s=SIG``: the click is counted, then 302 to URL, only if omnicrm
  signed that URL for that message (400 otherwise: no open redirect).

A token that is not genuine (made up, altered, made for another purpose) or names no
message is answered 404 (400 for a click) with no detail. Tokens are never logged.
"""

from __future__ import annotations

import datetime as dt
import logging
import urllib.parse
from collections.abc import Callable

from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from omnicrm.app.runtime import Runtime
from omnicrm.core.consent import Method
from omnicrm.engage import tracking
from omnicrm.engage.tracking import Event, Links, Purpose
from omnicrm.errors import OmnicrmError

log = logging.getLogger("omnicrm.web")

# The smallest transparent GIF (1x1, one colour, transparent).
PIXEL = bytes.fromhex(
    "47494638396101000100800000000000ffffff21f90401000000002c00000000010001000002024401003b"
)
MAX_FORM = 4096
_PRIVATE = {
    "Cache-Control": "no-store, no-cache, must-revalidate, max-age=0",
    "Pragma": "no-cache",
    "Expires": "0",
    # The token is in the URL: no page this one links to learns it.
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex, nofollow",
}
_PAGE_HEADERS = {
    **_PRIVATE,
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
}

_STYLE = (
    "body{font-family:system-ui,'Hiragino Sans','Noto Sans JP',sans-serif;max-width:32rem;"
    "margin:3rem auto;padding:0 1rem;color:#222;line-height:1.7}"
    "button{font-size:1rem;padding:.6rem 1.4rem;border:0;border-radius:.3rem;"
    "background:#333;color:#fff;cursor:pointer}.en{color:#666;font-size:.9rem}"
)


def _page(title: str, body: str) -> str:
    return (
        '<!doctype html><html lang="ja"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{title}</title><style>{_STYLE}</style></head><body>{body}</body></html>"
    )


def confirm_page(action: str) -> str:
    """The unsubscribe page: one button posting to ``action`` (already escaped)."""
    return _page(
        "配信停止 / Unsubscribe",
        "<h1>配信停止</h1>"
        "<p>このメールアドレスへのお知らせの配信を停止します。よろしければ下のボタンを"
        "押してください。</p>"
        '<p class="en">Stop receiving these messages: press the button below.</p>'
        f'<form method="post" action="{action}">'
        '<input type="hidden" name="confirm" value="1">'
        "<button type=submit>配信を停止する / Unsubscribe</button></form>",
    )


DONE_PAGE = _page(
    "配信を停止しました / Unsubscribed",
    "<h1>配信を停止しました</h1>"
    "<p>今後、このアドレスへのお知らせはお送りしません。</p>"
    '<p class="en">You are unsubscribed: no more of these messages will be sent to you.</p>',
)


def _not_found() -> Response:
    return PlainTextResponse("Not Found", 404, headers=_PRIVATE)


def _bad_link() -> Response:
    return PlainTextResponse("Bad Request", 400, headers=_PRIVATE)


def _unavailable() -> Response:
    return PlainTextResponse("Service Unavailable", 503, headers={**_PRIVATE, "Retry-After": "60"})


def _kind(exc: BaseException) -> str:
    """What failed, without the statement's parameters (an address may be among them)."""
    return type(exc).__name__


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


async def _form(request: Request) -> dict[str, str] | None:
    """The POSTed form's fields (url-encoded or multipart), at most MAX_FORM bytes; None
    if it is larger."""
    data = b""
    async for chunk in request.stream():
        data += chunk
        if len(data) > MAX_FORM:
            return None
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    text = data.decode("utf-8", "replace")
    if kind == "multipart/form-data":
        # A mail client's one-click POST: a field or two, read without a parser library.
        fields: dict[str, str] = {}
        for part in text.split("\r\n--"):
            head, _, value = part.partition("\r\n\r\n")
            if 'name="' in head:
                name = head.split('name="', 1)[1].split('"', 1)[0]
                fields[name] = value.rstrip("\r\n-").strip()
        return fields
    return {k: v[-1] for k, v in urllib.parse.parse_qs(text).items()}


def routes(runtime: Runtime, *, clock: Callable[[], dt.datetime] = _now) -> list[Route]:
    """The routes of a message's links, for :func:`omnicrm.app.webhook_app.create_app`."""

    def links() -> Links:
        return runtime.links()

    def write(work: Callable[..., bool], *args: object, **kwargs: object) -> bool:
        with runtime.store.engine.begin() as conn:
            return work(conn, *args, **kwargs)

    async def unsubscribe(request: Request) -> Response:
        token = request.query_params.get("token", "")
        ref = links().read(token, Purpose.UNSUBSCRIBE)
        if ref is None:
            return _not_found()
        if request.method == "GET":
            try:
                known = await run_in_threadpool(write, tracking.message_exists, ref)
            except (SQLAlchemyError, OmnicrmError) as exc:
                log.error("the unsubscribe page could not read the store: %s", _kind(exc))
                return _unavailable()
            if not known:
                return _not_found()
            action = "?" + urllib.parse.urlencode({"token": token})
            return HTMLResponse(confirm_page(action.replace("&", "&amp;")), headers=_PAGE_HEADERS)
        try:
            form = await _form(request)
        except ClientDisconnect:
            return _bad_link()
        if form is None:
            return PlainTextResponse("Payload Too Large", 413, headers=_PRIVATE)
        one_click = form.get("List-Unsubscribe") == "One-Click"
        method = Method.ONE_CLICK if one_click else Method.LINK
        try:
            done = await run_in_threadpool(
                write, tracking.unsubscribe, ref, at=clock(), method=method
            )
        except (SQLAlchemyError, OmnicrmError) as exc:
            log.error("an unsubscribe could not be recorded (%s); asked again, it is", _kind(exc))
            return _unavailable()
        if not done:
            return _not_found()
        log.info(
            "unsubscribe (%s) from campaign %s of shop %s, outbox row %s",
            method.value,
            ref.campaign_id,
            ref.shop,
            ref.outbox_id,
        )
        return HTMLResponse(DONE_PAGE, headers=_PAGE_HEADERS)

    async def opened(request: Request) -> Response:
        name: str = request.path_params["name"]
        if not name.endswith(".gif"):
            return _not_found()
        ref = links().read(name.removesuffix(".gif"), Purpose.OPEN)
        if ref is None:
            return _not_found()
        try:
            known = await run_in_threadpool(write, tracking.record, ref, Event.OPEN, clock())
        except (SQLAlchemyError, OmnicrmError) as exc:
            log.error("an open could not be recorded: %s", _kind(exc))
            known = True  # the picture still shows
        if not known:
            return _not_found()
        return Response(PIXEL, media_type="image/gif", headers=_PRIVATE)

    async def clicked(request: Request) -> Response:
        found = links().click_target(
            request.path_params["token"],
            request.query_params.get("u", ""),
            request.query_params.get("s", ""),
        )
        if found is None:
            return _bad_link()
        ref, url = found
        try:
            await run_in_threadpool(write, tracking.record, ref, Event.CLICK, clock())
        except (SQLAlchemyError, OmnicrmError) as exc:
            log.error("a click could not be recorded: %s", _kind(exc))
        # Signed by omnicrm for this message: the customer goes on whatever was recorded.
        return RedirectResponse(url, 302, headers=_PRIVATE)

    return [
        Route(tracking.UNSUBSCRIBE_PATH, unsubscribe, methods=["GET", "POST"]),
        Route(tracking.OPEN_PATH + "/{name}", opened, methods=["GET"]),
        Route(tracking.CLICK_PATH + "/{token}", clicked, methods=["GET"]),
    ]
