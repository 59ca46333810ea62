"""The links of a message that come back to omnicrm: unsubscribe, the open pixel, clicks.

Every such link names one outbox row (the message) and carries a signature made with
the installation's secret (:mod:`omnicrm.core.signing`) over the shop, the campaign,
the row and the link's purpose, so it cannot be made up or turned to another use: a
message id alone unsubscribes nobody. A token reads ``SHOP~CAMPAIGN~ROW~SIGNATURE``.

- Unsubscribe (``/u?token=``, the List-Unsubscribe link and the footer's): records the
  withdrawal through the consent machinery on every source customer of the person
  (:func:`~omnicrm.engage.permission.change_consent`, source ``campaign:NAME``) and puts
  the address the message went to on the suppression list, so it holds before the next
  send. Saying it again changes nothing.
- Open (``/t/o/TOKEN.gif``) and click (``/t/c/TOKEN?u=URL&s=SIG``): the click's second
  signature covers the exact target URL, so the endpoint sends nobody anywhere the
  message did not link to (no open redirect). Each is counted per outbox row, with the
  first and the last time, in ``message_events``: ids only.

:func:`instrument` rewrites a rendered HTML body at send time: each http(s) link through
the click endpoint (never a link back to omnicrm itself, such as the unsubscribe link),
and the pixel before ``</body>``.
"""

from __future__ import annotations

import datetime as dt
import html
import re
import urllib.parse
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.dialects import postgresql, sqlite

from omnicrm.core import consent, signing
from omnicrm.core.consent import Method
from omnicrm.core.records import ConsentState, Medium
from omnicrm.engage.permission import members_of, record_word
from omnicrm.engage.schema import campaigns, message_events, outbox

UNSUBSCRIBE_PATH = "/u"
OPEN_PATH = "/t/o"
CLICK_PATH = "/t/c"
MAX_TOKEN = 200
MAX_URL = 4000
"""The longest link target a click follows (what a browser keeps in its address bar)."""

_SHOP = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")


class Purpose(StrEnum):
    """What a link does; a token made for one is refused for another."""

    UNSUBSCRIBE = "unsubscribe"
    OPEN = "open"
    CLICK = "click"


class Event(StrEnum):
    OPEN = "open"
    CLICK = "click"


@dataclass(frozen=True)
class MessageRef:
    """One message: its shop, campaign and outbox row."""

    shop: str
    campaign_id: int
    outbox_id: int

    def _parts(self) -> tuple[str, str, str]:
        return self.shop, str(self.campaign_id), str(self.outbox_id)


@dataclass(frozen=True)
class Links:
    """How messages link back: the installation's secret and the web app's public
    address (``[web] base_url``; None: unsubscribe tokens only, no tracking)."""

    secret: bytes = field(repr=False)
    base_url: str | None = None

    def token(self, ref: MessageRef, purpose: Purpose) -> str:
        sig = signing.signature(self.secret, purpose.value, *ref._parts())
        return f"{ref.shop}~{ref.campaign_id}~{ref.outbox_id}~{sig}"

    def read(self, token: str, purpose: Purpose) -> MessageRef | None:
        """The message ``token`` names, if it is genuine and made for ``purpose``."""
        if len(token) > MAX_TOKEN:
            return None
        parts = token.split("~")
        if len(parts) != 4:
            return None
        shop, campaign, row, sig = parts
        if not (_SHOP.fullmatch(shop) and campaign.isascii() and row.isascii()):
            return None
        if not (campaign.isdigit() and row.isdigit() and len(campaign) < 12 and len(row) < 15):
            return None
        ref = MessageRef(shop, int(campaign), int(row))
        if not signing.verify(self.secret, sig, purpose.value, *ref._parts()):
            return None
        return ref

    def link_signature(self, ref: MessageRef, url: str) -> str:
        """The signature a click link carries for ``url`` in message ``ref``."""
        return signing.signature(self.secret, "click-target", *ref._parts(), url)

    def click_target(self, token: str, url: str, sig: str) -> tuple[MessageRef, str] | None:
        """The message and the http(s) URL a click link leads to, if the link is one
        omnicrm made; None for an unsigned, altered or foreign one."""
        ref = self.read(token, Purpose.CLICK)
        if ref is None or len(url) > MAX_URL or not _followable(url):
            return None
        if not signing.verify(self.secret, sig, "click-target", *ref._parts(), url):
            return None
        return ref, url

    def _base(self) -> str:
        if self.base_url is None:
            raise ValueError("no [web] base_url: messages cannot link back")
        return self.base_url

    def unsubscribe_url(self, ref: MessageRef) -> str:
        token = self.token(ref, Purpose.UNSUBSCRIBE)
        return f"{self._base()}{UNSUBSCRIBE_PATH}?{urllib.parse.urlencode({'token': token})}"

    def pixel_url(self, ref: MessageRef) -> str:
        return f"{self._base()}{OPEN_PATH}/{self.token(ref, Purpose.OPEN)}.gif"

    def click_url(self, ref: MessageRef, url: str) -> str:
        query = urllib.parse.urlencode({"u": url, "s": self.link_signature(ref, url)})
        return f"{self._base()}{CLICK_PATH}/{self.token(ref, Purpose.CLICK)}?{query}"


def _followable(url: str) -> bool:
    """An absolute http(s) URL with a host, nothing a browser would read otherwise."""
    if any(c.isspace() or ord(c) < 32 for c in url):
        return False
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


# -- the HTML body -----------------------------------------------------------------------

# An <a> tag's href, quoted either way or not at all. An email's HTML is the operator's
# template, rendered: a tag's attributes are what this reads, not arbitrary markup.
_HREF = re.compile(
    r"""(<a\b[^>]*?\shref\s*=\s*)("[^"]*"|'[^']*'|[^\s"'>]+)""", re.IGNORECASE | re.DOTALL
)
_BODY_END = re.compile(r"</body\s*>", re.IGNORECASE)


def instrument(body: str, links: Links, ref: MessageRef) -> str:
    """``body`` (rendered HTML) with each http(s) link going through the click endpoint
    and the open pixel added; links back to omnicrm (the unsubscribe page) stay as
    they are."""
    base = links._base()
    own = (base + UNSUBSCRIBE_PATH, base + "/t/")

    def rewrite(match: re.Match[str]) -> str:
        raw = match.group(2)
        quoted = raw[:1] in "\"'"
        url = html.unescape(raw[1:-1] if quoted else raw).strip()
        if not _followable(url) or url.startswith(own) or len(url) > MAX_URL:
            return match.group(0)
        return f'{match.group(1)}"{html.escape(links.click_url(ref, url), quote=True)}"'

    rewritten = _HREF.sub(rewrite, body)
    pixel = (
        f'<img src="{html.escape(links.pixel_url(ref), quote=True)}" width="1" height="1" '
        'alt="" style="display:block;border:0;width:1px;height:1px">'
    )
    ends = list(_BODY_END.finditer(rewritten))
    if not ends:
        return rewritten + pixel
    at = ends[-1].start()
    return rewritten[:at] + pixel + rewritten[at:]


# -- what came back ----------------------------------------------------------------------


@dataclass(frozen=True)
class _Sent:
    shop: str
    profile_id: int
    medium: Medium
    address: str | None
    message_id: str


def _message(conn: Connection, ref: MessageRef) -> _Sent | None:
    """The outbox row ``ref`` names, if its message was handed over. Found by its id
    and campaign (both unique across shops): the signature vouches for the pair, and a
    shop renamed since (``omnicrm shops rename``) still honours its sent links."""
    o = outbox.c
    row = conn.execute(
        select(o.shop, o.profile_id, o.medium, o.address, o.message_id).where(
            o.id == ref.outbox_id,
            o.campaign_id == ref.campaign_id,
            o.handed_at.is_not(None),
        )
    ).first()
    if row is None:
        return None
    return _Sent(row[0], row[1], Medium(row[2]), row[3], row[4])


def message_exists(conn: Connection, ref: MessageRef) -> bool:
    """Whether ``ref`` names a message that was handed over."""
    return _message(conn, ref) is not None


def record(conn: Connection, ref: MessageRef, kind: Event, at: dt.datetime) -> bool:
    """Count an open or a click of message ``ref`` at ``at``; False if there is no such
    message (nothing recorded)."""
    sent = _message(conn, ref)
    if sent is None:
        return False
    values = {
        "shop": sent.shop,
        "outbox_id": ref.outbox_id,
        "kind": kind.value,
        "campaign_id": ref.campaign_id,
        "first_at": at,
        "last_at": at,
        "count": 1,
    }
    e = message_events.c
    keys = [e.shop, e.outbox_id, e.kind]
    # One statement whoever else counts the same message at the same moment.
    if conn.dialect.name == "postgresql":
        pg = postgresql.insert(message_events).values(**values)
        upsert: Any = pg.on_conflict_do_update(
            index_elements=keys, set_={"count": e["count"] + 1, "last_at": pg.excluded.last_at}
        )
    else:
        lite = sqlite.insert(message_events).values(**values)
        upsert = lite.on_conflict_do_update(
            index_elements=keys, set_={"count": e["count"] + 1, "last_at": lite.excluded.last_at}
        )
    conn.execute(upsert)
    return True


def unsubscribe(conn: Connection, ref: MessageRef, *, at: dt.datetime, method: Method) -> bool:
    """Withdraw the consent of message ``ref``'s recipient for its medium, across their
    merged records, and suppress the address it went to; False if there is no such
    message. Idempotent: a person already unsubscribed through omnicrm is left as is."""
    sent = _message(conn, ref)
    if sent is None:
        return False
    shop, medium = sent.shop, sent.medium
    name = conn.execute(
        select(campaigns.c.name).where(campaigns.c.shop == shop, campaigns.c.id == ref.campaign_id)
    ).scalar_one()
    source = f"campaign:{name}"
    # None: the person was forgotten since; the address is still suppressed.
    members = members_of(conn, sent.profile_id, shop=shop)
    if members:
        standing = consent.latest_statement(conn, shop=shop, members=members, medium=medium)
        if (
            standing is not None
            and standing.state == ConsentState.OPTED_OUT
            and standing.method is not None
        ):
            members = []  # unsubscribed through omnicrm already: no second statement
    # The address the message went to, which may differ from the profile's current one.
    record_word(
        conn,
        shop=shop,
        members=members,
        address=sent.address,
        medium=medium,
        state=ConsentState.OPTED_OUT,
        at=at,
        source=source,
        method=method,
        evidence=sent.message_id,
    )
    return True
