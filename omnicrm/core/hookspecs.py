"""The hooks a plugin implements. Every hook is documented here and in docs/plugins.md.

Mark implementations with ``omnicrm.hookimpl``. The product hooks (three stream
hooks, reconciliation, recommendation, dispatch) are called only on the plugin that registered the
channel type, recommender or dispatcher being used, so an implementation never has to
check whether a call is meant for it; it returns a result, never ``None``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from pydantic import BaseModel

    from omnicrm.core.channels import Checkpoint, StreamContext
    from omnicrm.core.dispatch import DispatchOutcome, Message
    from omnicrm.core.host import Registrar
    from omnicrm.core.recommend import RecommendationRequest, ScoredProduct
    from omnicrm.core.records import Checkout, Customer, Order, Product

PROJECT = "omnicrm"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def omnicrm_register(register: Registrar) -> None:
    """Register what this plugin provides.

    Fires once per plugin when the host loads it, before any other hook. Call
    ``register.channel_type(channel)`` for each :class:`~omnicrm.ChannelType`,
    ``register.dispatcher(dispatcher)`` for each :class:`~omnicrm.Dispatcher` and
    ``register.recommender(recommender)`` for each :class:`~omnicrm.Recommender` the
    plugin provides (:class:`~omnicrm.Registrar`). Names must be unique among objects of
    one kind across all plugins; a clash, a missing hook, or an exception raised here
    fails this plugin alone. Returns nothing.
    """


@hookspec(firstresult=True)
def omnicrm_sync_customers(ctx: StreamContext[BaseModel]) -> Iterable[Customer | Checkpoint]:
    """Customer sync: yield the channel's customers changed since ``ctx.since``.

    Fires for each run of the ``customers`` stream of a connection whose channel type
    this plugin registered (``ctx.channel`` tells which, if it registered several).
    Returns an iterable (typically a generator) of :class:`~omnicrm.Customer` records in
    ascending ``updated_at`` order, ``updated_at >= ctx.since`` when ``since`` is set,
    optionally interleaved with :class:`~omnicrm.Checkpoint` objects. Raise the errors in
    ``omnicrm.errors`` (``TransientError``, ``RateLimitedError``, ``AuthError``,
    ``DataError``, ``ConfigError``) to tell the engine how to react; call
    ``ctx.wait_for_rate_limit(seconds)`` to pace requests.
    """
    raise NotImplementedError


@hookspec(firstresult=True)
def omnicrm_import_orders(ctx: StreamContext[BaseModel]) -> Iterable[Order | Checkpoint]:
    """Order import: yield the channel's orders, with their lines, changed since ``ctx.since``.

    Fires for each run of the ``orders`` stream of a connection whose channel type this
    plugin registered. Returns an iterable of :class:`~omnicrm.Order` records (each with
    all of its lines) in ascending ``updated_at`` order, optionally interleaved with
    :class:`~omnicrm.Checkpoint` objects. Errors and pacing as for
    ``omnicrm_sync_customers``.
    """
    raise NotImplementedError


@hookspec(firstresult=True)
def omnicrm_sync_products(ctx: StreamContext[BaseModel]) -> Iterable[Product | Checkpoint]:
    """Product sync: yield the channel's products, each with all of its variants, changed
    since ``ctx.since``.

    Fires for each run of the ``products`` stream of a connection whose channel type
    offers it (``ChannelType.streams``; a channel without a catalogue leaves it out and
    need not implement this hook). Returns an iterable of :class:`~omnicrm.Product`
    records in ascending ``updated_at`` order, drafts and archived products included
    (their ``status`` says so: a product taken off sale must reach the store to stop
    being offered), optionally interleaved with :class:`~omnicrm.Checkpoint` objects.
    Errors and pacing as for ``omnicrm_sync_customers``.
    """
    raise NotImplementedError


@hookspec(firstresult=True)
def omnicrm_sync_checkouts(ctx: StreamContext[BaseModel]) -> Iterable[Checkout | Checkpoint]:
    """Abandoned checkout sync: yield the checkouts customers began and left, changed
    since ``ctx.since``.

    Fires for each run of the ``checkouts`` stream of a connection whose channel type
    offers it (``ChannelType.streams``). Returns an iterable of :class:`~omnicrm.Checkout`
    records in ascending ``updated_at`` order, completed ones included (``completed_at``
    says so), optionally interleaved with :class:`~omnicrm.Checkpoint` objects. Errors and
    pacing as for ``omnicrm_sync_customers``.
    """
    raise NotImplementedError


@hookspec(firstresult=True)
def omnicrm_reconcile(ctx: StreamContext[BaseModel], stored: frozenset[str]) -> Iterable[str]:
    """Id reconciliation: which of the ``stored`` record ids the platform no longer has.

    Fires nightly (and on ``omnicrm reconcile``) for each stream a channel type lists in
    ``ChannelType.reconciles``, with every id of ``ctx.stream`` the store holds for
    ``ctx.connection``. ``ctx.until`` is when the reconciliation started; ``since`` and
    ``state`` mean nothing here. Returns the ids, drawn from ``stored``, of records the
    platform deleted; the store deletes them as it would on a delete webhook. Return only
    ids confirmed gone: a record that merely moved while a listing paged, or that was
    created after ``ctx.until``, must never be returned. Errors and pacing as for
    ``omnicrm_sync_customers``.
    """
    raise NotImplementedError


@hookspec(firstresult=True)
def omnicrm_recommend(request: RecommendationRequest) -> list[ScoredProduct]:
    """Recommendation: score products for a customer, or alongside a product.

    Fires when a recommendation is asked of a recommender this plugin registered
    (``request.recommender`` names it). ``request.history`` is the shop's
    :class:`~omnicrm.PurchaseHistory`, the same object for every request until the shop's
    data changes: fit a model once per history (``history.model(key, fit)``) and score
    from it. Returns up to ``request.limit`` :class:`~omnicrm.ScoredProduct` objects,
    best first, each with its reason in words and the numbers behind it, drawn from
    ``request.candidates`` (or from any product in the history when no candidates are
    given). Return an empty list when there is nothing to recommend.
    """
    raise NotImplementedError


@hookspec(firstresult=True)
def omnicrm_dispatch_message(message: Message, settings: BaseModel) -> DispatchOutcome:
    """Message dispatch: deliver one rendered message through one medium.

    Fires for each message sent through a dispatcher this plugin registered, after the
    host has checked the customer's consent for ``message.medium``; ``settings`` is the
    dispatcher's validated settings. Returns a :class:`~omnicrm.DispatchOutcome`: ``sent``
    with the provider's message id, ``rejected`` when the medium refused the recipient
    (not retried), or ``failed`` for a passing failure (may be retried).
    """
    raise NotImplementedError
