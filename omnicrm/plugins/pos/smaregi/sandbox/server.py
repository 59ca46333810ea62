"""The Smaregi emulator: a contract's token endpoint and POS API over the POS seed.

What it holds to, as the Platform API does (see the package docstring for sources):

* ``POST /app/{contract_id}/token``: HTTP Basic client credentials, ``grant_type``
  ``client_credentials``, only scopes it knows; a bearer token for ``token_lifetime``
  seconds. An expired or unknown token is a 401.
* ``GET /{contract_id}/pos/stores | customers | transactions`` (and one record by id):
  ``limit`` 1..1000 (100 with ``with_details``), ``page`` from 1, ``sort`` on the fields
  the reference lists, a 400 for anything else; every number and id a string; times as
  ``YYYY-MM-DDThh:mm:ss+09:00``.
* Transactions need a ``transaction_date_time`` or ``upd_date_time`` range (``-from`` and
  ``-to``) of at most 31 days: a wider one is a 400.
* Late offline sales: a sale an offline register made becomes visible only when it is
  uploaded (the seed's ``received_at``) but carries the register's times, so a reader
  whose cursor has passed them must look back (the worst case: we found no statement of
  which stamps Smaregi gives an offline upload).
* ``GET /{contract_id}/pos/products`` (and ``/categories``): the POS seed's products,
  the same ids and codes its sales' details carry, sorted and filtered by
  ``upd_date_time`` like members. The EC shop's 抹茶テリーヌ (``TRN-``) is hidden from the
  register (``displayFlag`` 0, no longer sold) and gift wrapping is kept out of sales
  (``salesDivision`` 1); :meth:`SmaregiSandbox.update_product` edits one now.
* Cancels (``cancelDivision`` 1) move ``updDateTime``; returns are detail lines of
  ``transactionDetailDivision`` 2; merged members have ``status`` "4" and carry the
  surviving member's code in ``mergedCustomerCode`` (how a merge shows in the API is not
  in the public reference: this is the sandbox's rendering of it).
* Withdrawn members (退会): ``status`` "3", ``leaveDate`` the day they left, ``point``
  "0" (withdrawal forfeits the points) and ``updDateTime`` moved to the withdrawal. One
  active member in :data:`WITHDRAWN_EVERY` withdrew some weeks after their last visit;
  tests withdraw (:meth:`SmaregiSandbox.withdraw`) or restore members at a time of
  their choosing, shown once ``clock`` reaches it.
* Fault switches from :class:`omnicrm.testing.Emulator` (5xx, 429 with ``Retry-After``,
  slow answers, cut bodies), answered in Smaregi's error shape.

``clock`` is "now" for visibility; tests move it to let late uploads arrive.
"""

from __future__ import annotations

import base64
import bisect
import datetime as dt
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, ClassVar
from urllib.parse import parse_qs

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from omnicrm.plugins.pos.seed import JST, Member, Product, Sale, StoreData
from omnicrm.plugins.pos.smaregi.settings import SCOPES
from omnicrm.testing import Emulator

MAX_RANGE = dt.timedelta(days=31)
MAX_LIMIT, DETAILS_LIMIT = 1000, 100
CUSTOMER_BASE = 1000
"""customerId of member index 0; ids grow with the index."""
TRANSACTION_BASE = 100_000
"""transactionHeadId of sale number 0."""

WITHDRAWN_EVERY = 40
"""One active member in this many has withdrawn (退会) by the seed's end."""
WITHDRAWN_AFTER = dt.timedelta(days=21)
"""How long after their last visit (or update) a seeded member withdraws."""

_CUSTOMER_SORTS = ("customerId", "customerCode", "updDateTime")
_PRODUCT_SORTS = ("productId", "productCode", "updDateTime")
RETIRED_PREFIX = "TRN-"
"""Codes of products no longer sold at the register (displayFlag 0)."""
NOT_FOR_SALE = ("WRAP",)
"""Codes kept out of sales (salesDivision 1): a service rung up by hand."""
_TRANSACTION_SORTS = (
    "transactionHeadId",
    "transactionDateTime",
    "terminalTranDateTime",
    "updDateTime",
    "storeId",
)


class _Json(JSONResponse):
    """JSON by orjson: a page of 100 sales with details is most of the sandbox's work."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def stamp(value: dt.datetime) -> str:
    """Smaregi's date-time: ``2025-12-01T10:28:44+09:00``."""
    return value.astimezone(JST).isoformat(timespec="seconds")


def _problem(status: int, title: str, detail: str) -> JSONResponse:
    """An error in Smaregi's shape (RFC 7807 style)."""
    return JSONResponse(
        {"type": "about:blank", "title": title, "status": status, "detail": detail}, status
    )


class _BadRequest(Exception):
    pass


def _time_param(params: Mapping[str, str], name: str) -> dt.datetime | None:
    raw = params.get(name)
    if raw is None:
        return None
    try:
        value = dt.datetime.fromisoformat(raw)
    except ValueError:
        raise _BadRequest(f"{name} must be YYYY-MM-DDThh:mm:ssTZD") from None
    if value.tzinfo is None:
        raise _BadRequest(f"{name} must carry a time zone")
    return value


def _paging(params: Mapping[str, str], details: bool) -> tuple[int, int]:
    cap = DETAILS_LIMIT if details else MAX_LIMIT
    try:
        limit = int(params.get("limit", "100"))
        page = int(params.get("page", "1"))
    except ValueError:
        raise _BadRequest("limit and page must be integers") from None
    if not 1 <= limit <= cap:
        raise _BadRequest(f"limit must be between 1 and {cap}")
    if page < 1:
        raise _BadRequest("page must be 1 or more")
    return limit, page


def _sort(
    params: Mapping[str, str], allowed: tuple[str, ...], default: str
) -> list[tuple[str, bool]]:
    keys = []
    for part in params.get("sort", default).split(","):
        name, _, order = part.strip().partition(":")
        if name not in allowed or order not in ("", "asc", "desc"):
            raise _BadRequest(f"sort: {part!r} is not one of {', '.join(allowed)}")
        keys.append((name, order == "desc"))
    return keys


def _member_key(name: str, updated: Callable[[Member], dt.datetime]) -> Callable[[Member], Any]:
    if name == "updDateTime":
        return updated
    if name == "customerCode":
        return lambda m: m.code
    return lambda m: m.index


def _product_key(name: str) -> Callable[[dict[str, Any]], Any]:
    if name == "productCode":
        return lambda r: r["productCode"]
    return _record_key(name)


def _record_key(name: str) -> Callable[[dict[str, Any]], Any]:
    if name.endswith("Id"):
        return lambda r: int(r[name])
    return lambda r: dt.datetime.fromisoformat(r[name])


class SmaregiSandbox(Emulator):
    """A Smaregi contract on loopback, serving ``data``."""

    name: ClassVar[str] = "smaregi-sandbox"

    def __init__(
        self,
        data: StoreData,
        *,
        contract_id: str = "sb_omnicrm",
        client_id: str = "sandbox-client",
        client_secret: str | None = None,
        token_lifetime: float = 3600.0,
        withdrawn_every: int | None = WITHDRAWN_EVERY,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(host=host, port=port)
        self.data = data
        self.contract_id = contract_id
        self.client_id = client_id
        self.client_secret = client_secret or secrets.token_urlsafe(24)
        self.token_lifetime = token_lifetime
        self.webhook_token = secrets.token_urlsafe(24)
        self.clock: Callable[[], dt.datetime] = lambda: data.end
        """"Now" for what is visible (default: the seed's end)."""
        self.lock = threading.Lock()
        self.tokens: dict[str, float] = {}  # token -> monotonic expiry
        self.token_requests = 0
        self.requests: list[str] = []
        """The path and query of every API request, in order (for tests)."""
        self._member_ids = {m.code: CUSTOMER_BASE + m.index for m in data.members}
        # Kept here, not on the seed's members: the seed is shared (read only) by every
        # sandbox of the process, the Square one included.
        self.withdrawals: dict[str, dt.datetime] = (
            _withdrawals(data, withdrawn_every) if withdrawn_every else {}
        )
        """Member code -> when they withdrew (shown once ``clock`` reaches it)."""
        self._touched: dict[str, dt.datetime] = dict(self.withdrawals)
        # Sales by updDateTime: the (stamp, number) pairs, sorted once; a cancelled sale
        # is there twice, at its own stamp and at the cancel (not yet made before it).
        self._by_upd = sorted(
            [(self.stamped(s), s.number) for s in data.sales]
            + [(s.cancelled_at, s.number) for s in data.sales if s.cancelled_at is not None]
        )
        self._upd_keys = [key for key, _ in self._by_upd]
        # The last window listed: a reader pages through one window a page at a time,
        # and listing a month of a big contract per page made paging quadratic.
        self._window: tuple[tuple[dt.datetime, dt.datetime, dt.datetime], list[Sale]] | None
        self._window = None
        categories = sorted({p.category for p in data.products})
        self.categories = {name: str(n) for n, name in enumerate(categories, start=1)}
        self.products = {str(p.id): self._product_json(p) for p in data.products}
        self.app = Starlette(
            routes=[
                Route("/app/{contract}/token", self._token, methods=["POST"]),
                Route("/{contract}/pos/stores", self._stores),
                Route("/{contract}/pos/customers", self._customers),
                Route("/{contract}/pos/customers/{id}", self._customer),
                Route("/{contract}/pos/transactions", self._transactions),
                Route("/{contract}/pos/transactions/{id}", self._transaction),
                Route("/{contract}/pos/products", self._products),
                Route("/{contract}/pos/categories", self._categories),
            ]
        )

    def fault_response(self, request: Request, status: int, headers: Mapping[str, str]) -> Response:
        answer = _problem(status, "Too Many Requests" if status == 429 else "Server Error", "")
        answer.headers.update(headers)
        return answer

    def settings(self) -> dict[str, Any]:
        """A connection's settings that reach this sandbox."""
        return {
            "contract_id": self.contract_id,
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "api_url": self.url,
            "id_url": self.url,
            "webhook_token": self.webhook_token,
            "history_start": (self.data.end - dt.timedelta(days=400)).date().isoformat(),
        }

    # --- the data as Smaregi shows it ------------------------------------------------------

    @staticmethod
    def stamped(sale: Sale) -> dt.datetime:
        """transactionDateTime: when the server received the sale, except that an offline
        register's upload keeps the register's own time."""
        return sale.sold_at if sale.offline else sale.received_at

    def visible(self, sale: Sale, now: dt.datetime) -> bool:
        return sale.received_at <= now

    def withdraw(self, code: str, at: dt.datetime) -> None:
        """Member ``code`` withdraws (退会) at ``at``."""
        with self.lock:
            self.withdrawals[code] = at
            self._touched[code] = at

    def restore(self, code: str, at: dt.datetime) -> None:
        """Member ``code``'s withdrawal is undone at ``at`` (back in use)."""
        with self.lock:
            self.withdrawals.pop(code, None)
            self._touched[code] = at

    def withdrawn_at(self, member: Member, now: dt.datetime) -> dt.datetime | None:
        """When ``member`` withdrew, if they had by ``now``."""
        left = self.withdrawals.get(member.code)
        return left if left is not None and left <= now else None

    def updated(self, member: Member, now: dt.datetime) -> dt.datetime:
        """updDateTime as of ``now``: a withdrawal or a restoration moves it."""
        touched = self._touched.get(member.code)
        if touched is not None and member.updated < touched <= now:
            return touched
        return member.updated

    def customer_json(self, member: Member) -> dict[str, Any]:
        now = self.clock()
        left = self.withdrawn_at(member, now)
        status = "4" if member.status == "merged" else "3" if left else "0"
        return {
            "customerId": str(self._member_ids[member.code]),
            "customerCode": member.code,
            "customerNo": None,
            "rank": None,
            "staffRank": None,
            "lastName": member.last_name,
            "firstName": member.first_name,
            "lastKana": member.last_kana,
            "firstKana": member.first_kana,
            "postCode": member.zip,
            "address": f"{member.prefecture or ''}{member.address or ''}" or None,
            "phoneNumber": member.phone,
            "faxNumber": None,
            "mobileNumber": member.mobile,
            "mailAddress": member.email,
            "mailAddress2": None,
            "mailAddress3": None,
            "companyName": None,
            "sex": str(member.sex),
            "birthDate": member.birth_date.isoformat() if member.birth_date else None,
            "point": "0" if left else str(member.points),
            "pointExpireDate": None,
            "entryDate": member.joined.date().isoformat(),
            "leaveDate": left.astimezone(JST).date().isoformat() if left else None,
            "mailReceiveFlag": "1" if member.email else "0",
            "note": None,
            "status": status,
            "mergedCustomerCode": member.merged_into,
            "storeId": str(member.store_id),
            "insDateTime": stamp(member.joined),
            "updDateTime": stamp(self.updated(member, now)),
        }

    def _product_json(self, product: Product) -> dict[str, Any]:
        # Registered before the history starts; last edited some days before its end.
        edited = self.data.end - dt.timedelta(days=1 + product.id % 89, minutes=product.id % 53)
        return {
            "productId": str(product.id),
            "categoryId": self.categories[product.category],
            "productCode": product.code,
            "productName": product.name,
            "productKana": None,
            "taxDivision": "0",  # 税込
            "productPriceDivision": "1",
            "price": str(product.price),
            "customerPrice": None,
            "cost": None,
            "attribute": None,
            "description": None,
            "catchCopy": None,
            "size": None,
            "color": None,
            "tag": product.category,
            "groupCode": None,
            "url": None,
            "displaySequence": None,
            "salesDivision": "1" if product.code in NOT_FOR_SALE else "0",
            "stockControlDivision": "0",
            "displayFlag": "0" if product.code.startswith(RETIRED_PREFIX) else "1",
            "division": "0",
            "reduceTaxId": "10000001" if product.tax_rate == 8 else None,
            "insDateTime": stamp(self.data.end - dt.timedelta(days=800)),
            "updDateTime": stamp(edited),
        }

    def update_product(self, product_id: str, **fields: Any) -> dict[str, Any]:
        """Edit a product now (Smaregi's field names and string values); its
        ``updDateTime`` becomes the wall clock's now."""
        with self.lock:
            record = self.products[product_id]
            record.update(fields)
            now = dt.datetime.now(JST).replace(microsecond=0)
            record["updDateTime"] = stamp(
                max(now, dt.datetime.fromisoformat(record["updDateTime"]))
            )
            return dict(record)

    def transaction_json(self, sale: Sale, details: bool, now: dt.datetime) -> dict[str, Any]:
        member = sale.member
        cancelled = sale.cancelled and sale.cancelled_at is not None and sale.cancelled_at <= now
        taxed = sale.tax
        stamped = self.stamped(sale)
        record: dict[str, Any] = {
            "transactionHeadId": str(TRANSACTION_BASE + sale.number),
            "transactionDateTime": stamp(stamped),
            "transactionHeadDivision": "1",
            "cancelDivision": "1" if cancelled else "0",
            "unitNonDiscountsubtotal": str(sum(li.unit_price * li.quantity for li in sale.lines)),
            "subtotal": str(sale.subtotal),
            "subtotalDiscountPrice": "0",
            "pointDiscount": str(sale.points_spent),
            "total": str(sale.total),
            "taxInclude": str(taxed),
            "taxExclude": "0",
            "amount": str(sum(li.quantity for li in sale.lines if not li.returned)),
            "returnAmount": str(sum(li.quantity for li in sale.lines if li.returned)),
            "storeId": str(sale.store.id),
            "terminalId": str(sale.terminal),
            "terminalTranId": str(sale.number),
            "terminalTranDateTime": stamp(sale.sold_at),
            "customerId": str(self._member_ids[member.code]) if member else None,
            "customerCode": member.code if member else None,
            "newPoint": str(sale.points_earned),
            "spendPoint": str(sale.points_spent),
            "point": str((sale.points_after or 0) - sale.points_earned + sale.points_spent)
            if member
            else "0",
            "totalPoint": str(sale.points_after) if sale.points_after is not None else "0",
            "sumDate": sale.sold_at.date().isoformat(),
            "updDateTime": stamp(sale.cancelled_at if cancelled and sale.cancelled_at else stamped),
        }
        if details:
            record["details"] = [
                {
                    "transactionHeadId": record["transactionHeadId"],
                    "transactionDetailId": str(n),
                    "transactionDetailDivision": "2" if line.returned else "1",
                    "productId": str(line.product.id),
                    "productCode": line.product.code,
                    "productName": line.product.name,
                    "categoryName": line.product.category,
                    "price": str(line.unit_price),
                    "salesPrice": str(line.unit_price),
                    "unitDiscountPrice": str(line.discount // line.quantity),
                    "quantity": str(line.quantity),
                    "unitNonDiscountSum": str(line.unit_price * line.quantity),
                    "unitDiscountSum": str(line.discount),
                    "taxRate": f"{line.product.tax_rate}.000",
                }
                for n, line in enumerate(sale.lines, start=1)
            ]
        return record

    # --- endpoints ---------------------------------------------------------------------------

    def _contract(self, request: Request) -> Response | None:
        if request.path_params["contract"] != self.contract_id:
            return _problem(404, "Not Found", "no such contract")
        with self.lock:
            self.requests.append(str(request.url.path) + "?" + str(request.url.query))
        header = request.headers.get("authorization", "")
        token = header.removeprefix("Bearer ").strip()
        with self.lock:
            expires = self.tokens.get(token)
        if not header.startswith("Bearer ") or expires is None or expires < time.monotonic():
            return _problem(401, "Unauthorized", "the access token is invalid or expired")
        return None

    async def _token(self, request: Request) -> Response:
        if request.path_params["contract"] != self.contract_id:
            return _problem(404, "Not Found", "no such contract")
        try:
            user, _, password = (
                base64.b64decode(request.headers.get("authorization", "")[6:])
                .decode()
                .partition(":")
            )
        except ValueError:
            user = password = ""
        with self.lock:
            self.token_requests += 1
        if not (
            secrets.compare_digest(user, self.client_id)
            and secrets.compare_digest(password, self.client_secret)
        ):
            return JSONResponse({"error": "invalid_client"}, 401)
        form = {k: v[-1] for k, v in parse_qs((await request.body()).decode()).items()}
        if form.get("grant_type") != "client_credentials":
            return JSONResponse({"error": "unsupported_grant_type"}, 400)
        scopes = str(form.get("scope", "")).split()
        if not set(scopes) <= set(SCOPES):
            return JSONResponse({"error": "invalid_scope"}, 400)
        token = secrets.token_urlsafe(24)
        with self.lock:
            self.tokens[token] = time.monotonic() + self.token_lifetime
        return JSONResponse(
            {
                "access_token": token,
                "token_type": "Bearer",
                "expires_in": int(self.token_lifetime),
                "scope": " ".join(scopes),
            }
        )

    async def _stores(self, request: Request) -> Response:
        if (refused := self._contract(request)) is not None:
            return refused
        try:
            limit, page = _paging(request.query_params, False)
        except _BadRequest as exc:
            return _problem(400, "Bad Request", str(exc))
        stores = [
            {
                "storeId": str(s.id),
                "storeCode": s.code,
                "storeName": s.name,
                "storeAbbr": s.name.removesuffix("店"),
                "postCode": s.zip,
                "address": f"{s.prefecture}{s.address}",
                "phoneNumber": s.phone,
                "division": "0",
            }
            for s in self.data.stores
        ]
        return _Json(stores[(page - 1) * limit : page * limit])

    async def _customers(self, request: Request) -> Response:
        if (refused := self._contract(request)) is not None:
            return refused
        params = request.query_params
        try:
            limit, page = _paging(params, False)
            keys = _sort(params, _CUSTOMER_SORTS, "customerId")
            low = _time_param(params, "upd_date_time-from")
            high = _time_param(params, "upd_date_time-to")
        except _BadRequest as exc:
            return _problem(400, "Bad Request", str(exc))
        now = self.clock()
        members = [
            m
            for m in self.data.members
            if m.joined <= now
            and (low is None or self.updated(m, now) >= low)
            and (high is None or self.updated(m, now) <= high)
            and params.get("customer_code", m.code) == m.code
        ]
        for name, descending in reversed(keys):  # stable sorts, the last key first
            members.sort(key=_member_key(name, lambda m: self.updated(m, now)), reverse=descending)
        chosen = members[(page - 1) * limit : page * limit]
        return _Json([self.customer_json(m) for m in chosen])

    async def _customer(self, request: Request) -> Response:
        if (refused := self._contract(request)) is not None:
            return refused
        try:
            index = int(request.path_params["id"]) - CUSTOMER_BASE
        except ValueError:
            index = -1
        if not 0 <= index < len(self.data.members):
            return _problem(404, "Not Found", "no such customer")
        return _Json(self.customer_json(self.data.members[index]))

    async def _products(self, request: Request) -> Response:
        if (refused := self._contract(request)) is not None:
            return refused
        params = request.query_params
        try:
            limit, page = _paging(params, False)
            keys = _sort(params, _PRODUCT_SORTS, "productId")
            low = _time_param(params, "upd_date_time-from")
            high = _time_param(params, "upd_date_time-to")
        except _BadRequest as exc:
            return _problem(400, "Bad Request", str(exc))
        with self.lock:
            records = [dict(r) for r in self.products.values()]
        chosen = [
            r
            for r in records
            if (low is None or dt.datetime.fromisoformat(r["updDateTime"]) >= low)
            and (high is None or dt.datetime.fromisoformat(r["updDateTime"]) <= high)
            and params.get("product_code", r["productCode"]) == r["productCode"]
        ]
        for name, descending in reversed(keys):
            chosen.sort(key=_product_key(name), reverse=descending)
        return _Json(chosen[(page - 1) * limit : page * limit])

    async def _categories(self, request: Request) -> Response:
        if (refused := self._contract(request)) is not None:
            return refused
        try:
            limit, page = _paging(request.query_params, False)
        except _BadRequest as exc:
            return _problem(400, "Bad Request", str(exc))
        categories = [
            {
                "categoryId": number,
                "categoryCode": number.zfill(4),
                "categoryName": name,
                "categoryAbbr": name,
                "displaySequence": number,
                "displayFlag": "1",
                "taxDivision": "0",
                "level": "1",
                "parentCategoryId": None,
            }
            for name, number in self.categories.items()
        ]
        return _Json(categories[(page - 1) * limit : page * limit])

    async def _transactions(self, request: Request) -> Response:
        if (refused := self._contract(request)) is not None:
            return refused
        params = request.query_params
        details = params.get("with_details", "none") != "none"
        try:
            limit, page = _paging(params, details)
            keys = _sort(params, _TRANSACTION_SORTS, "transactionHeadId")
            ranges = {}
            for field in ("transaction_date_time", "upd_date_time"):
                low = _time_param(params, f"{field}-from")
                high = _time_param(params, f"{field}-to")
                if (low is None) != (high is None):
                    raise _BadRequest(f"{field}-from and {field}-to go together")
                if low is not None and high is not None:
                    if high - low > MAX_RANGE:
                        raise _BadRequest(f"{field}: the range may span at most 31 days")
                    ranges[field] = (low, high)
            if not ranges:
                raise _BadRequest("give transaction_date_time-from/-to or upd_date_time-from/-to")
        except _BadRequest as exc:
            return _problem(400, "Bad Request", str(exc))
        now = self.clock()
        code = params.get("customer_code")
        simple = "upd_date_time" in ranges and len(ranges) == 1 and code is None
        if simple and [k for k, _ in keys] == ["updDateTime", "transactionHeadId"][: len(keys)]:
            # The index's own order: only the page is rendered (a big contract's pages
            # would otherwise each render a whole month).
            chosen = self._window_of(*ranges["upd_date_time"], now)
            if keys[0][1]:
                page_of = chosen[::-1][(page - 1) * limit : page * limit]
            else:
                page_of = chosen[(page - 1) * limit : page * limit]
            return _Json([self.transaction_json(s, details, now) for s in page_of])
        sales = [s for s in self.data.sales if self.visible(s, now)]
        if "upd_date_time" in ranges:
            sales = self._by_update(*ranges["upd_date_time"], now)
        if "transaction_date_time" in ranges:
            low, high = ranges["transaction_date_time"]
            sales = [s for s in sales if low <= self.stamped(s) <= high]
        records = [self.transaction_json(s, details, now) for s in sales]
        if code is not None:
            records = [r for r in records if r["customerCode"] == code]
        for name, descending in reversed(keys):
            records.sort(key=_record_key(name), reverse=descending)
        return _Json(records[(page - 1) * limit : page * limit])

    def _window_of(self, low: dt.datetime, high: dt.datetime, now: dt.datetime) -> list[Sale]:
        """:meth:`_by_update`, kept for the next page of the same window (not to be
        changed by the caller)."""
        key = (low, high, now)
        if self._window is None or self._window[0] != key:
            self._window = (key, self._by_update(low, high, now))
        return self._window[1]

    def _by_update(self, low: dt.datetime, high: dt.datetime, now: dt.datetime) -> list[Sale]:
        """The sales visible at ``now`` whose updDateTime then is in ``low..high``, in
        (updDateTime, id) order."""
        start = bisect.bisect_left(self._upd_keys, low)
        stop = bisect.bisect_right(self._upd_keys, high)
        chosen = []
        for when, number in self._by_upd[start:stop]:
            sale = self.data.sales[number - 1]
            if not self.visible(sale, now):
                continue
            cancelled = sale.cancelled_at is not None and sale.cancelled_at <= now
            # A cancelled sale is listed at its cancel, any other at its stamp.
            if when == (sale.cancelled_at if cancelled else self.stamped(sale)):
                chosen.append(sale)
        return chosen

    async def _transaction(self, request: Request) -> Response:
        if (refused := self._contract(request)) is not None:
            return refused
        try:
            number = int(request.path_params["id"]) - TRANSACTION_BASE
        except ValueError:
            number = 0
        now = self.clock()
        if not 1 <= number <= len(self.data.sales) or not self.visible(
            self.data.sales[number - 1], now
        ):
            return _problem(404, "Not Found", "no such transaction")
        details = request.query_params.get("with_details", "none") != "none"
        return _Json(self.transaction_json(self.data.sales[number - 1], details, now))

    # --- webhooks ---------------------------------------------------------------------------

    def webhook(self, event: str, ids: list[str]) -> dict[str, Any]:
        """The body Smaregi posts for ``event`` (pos:transactions, pos:customers)."""
        key = "transactionHeadIds" if event == "pos:transactions" else "customerIds"
        return {"contractId": self.contract_id, "event": event, "action": "created", key: ids}


def _withdrawals(data: StoreData, every: int) -> dict[str, dt.datetime]:
    """One in ``every`` of the active members (at least one) withdraws
    :data:`WITHDRAWN_AFTER` after their last sale or update, if that is before the seed's
    end (the same ones for the same seed)."""
    last: dict[str, dt.datetime] = {}
    for sale in data.sales:
        if sale.member is not None:
            code = sale.member.code
            last[code] = max(last.get(code, sale.sold_at), sale.received_at)
    # Not a merge's survivor: the merged card would be left naming a member who is gone.
    survivors = {m.merged_into for m in data.members if m.merged_into}
    eligible: list[tuple[str, dt.datetime]] = []
    for member in data.members:
        if member.status != "active" or member.code in survivors:
            continue
        at = max(member.updated, last.get(member.code, member.joined)) + WITHDRAWN_AFTER
        if at < data.end:
            eligible.append((member.code, at))
    middle = len(eligible) // 2
    return dict(eligible[every // 2 :: every] or eligible[middle : middle + 1])
