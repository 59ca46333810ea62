"""The plugin host: loads plugins fail-soft and offers typed calls over ``pm.hook``.

Plugins come from the ``omnicrm`` entry-point group (built-in ones too). A plugin that
fails to import, to register, or that implements a hook that does not exist is reported
and left out; the rest load. Set ``OMNICRM_DISABLE_PLUGINS=name,name`` to skip plugins.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, cast

import pluggy
from pydantic import BaseModel

from omnicrm.core import hookspecs
from omnicrm.core.channels import ChannelType, Checkpoint, Stream, StreamContext
from omnicrm.core.dispatch import DeliveryStatus, Dispatcher, DispatchOutcome, Message
from omnicrm.core.recommend import RecommendationRequest, Recommender, ScoredProduct
from omnicrm.core.records import Consent, ConsentState, Customer, Order
from omnicrm.errors import ConfigError, PluginError

ENTRY_POINT_GROUP = "omnicrm"
DISABLE_ENV = "OMNICRM_DISABLE_PLUGINS"

_STREAM_HOOKS = {
    Stream.CUSTOMERS: "omnicrm_sync_customers",
    Stream.ORDERS: "omnicrm_import_orders",
}

Registrable = ChannelType | Dispatcher | Recommender


@dataclass(frozen=True)
class PluginInfo:
    """A loaded plugin: where it came from and what it provides."""

    name: str
    version: str | None
    distribution: str | None
    hooks: tuple[str, ...]
    provides: tuple[str, ...]


@dataclass(frozen=True)
class PluginFailure:
    """A plugin that was left out, and why."""

    name: str
    distribution: str | None
    error: str


def disabled_from_env() -> frozenset[str]:
    """Plugin names listed in ``OMNICRM_DISABLE_PLUGINS`` (comma-separated)."""
    raw = os.environ.get(DISABLE_ENV, "")
    return frozenset(name.strip() for name in raw.split(",") if name.strip())


def _kind(obj: Registrable) -> str:
    if isinstance(obj, ChannelType):
        return "channel"
    if isinstance(obj, Dispatcher):
        return "dispatcher"
    return "recommender"


class Host:
    """The loaded plugins, what they registered, and typed calls into them."""

    def __init__(self) -> None:
        self._pm = pluggy.PluginManager(hookspecs.PROJECT)
        self._pm.add_hookspecs(hookspecs)
        self._infos: dict[str, PluginInfo] = {}
        self.failures: list[PluginFailure] = []
        self.disabled: list[str] = []
        self.channel_types: dict[str, ChannelType] = {}
        self.dispatchers: dict[str, Dispatcher] = {}
        self.recommenders: dict[str, Recommender] = {}
        self._owner: dict[tuple[str, str], str] = {}  # (kind, name) -> plugin name

    @classmethod
    def load(
        cls,
        *,
        extra: Mapping[str, object] | None = None,
        disabled: Collection[str] | None = None,
        use_entry_points: bool = True,
    ) -> Host:
        """Load the installed plugins, then ``extra`` ones (name -> module or object)."""
        host = cls()
        skip = disabled_from_env() if disabled is None else frozenset(disabled)
        if use_entry_points:
            for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
                dist = ep.dist.name if ep.dist else None
                if ep.name in skip:
                    host.disabled.append(ep.name)
                    continue
                try:
                    module = ep.load()
                except Exception as exc:  # a broken plugin must not take the host down
                    host.failures.append(PluginFailure(ep.name, dist, _describe(exc)))
                    continue
                version = ep.dist.version if ep.dist else None
                host.add(module, ep.name, distribution=dist, version=version)
        for name, plugin in (extra or {}).items():
            if name in skip:
                host.disabled.append(name)
            else:
                host.add(plugin, name)
        return host

    def add(
        self,
        plugin: object,
        name: str,
        *,
        distribution: str | None = None,
        version: str | None = None,
    ) -> bool:
        """Register one plugin and what it provides. On failure, record it and return False."""
        try:
            self._register(plugin, name, distribution, version)
        except Exception as exc:
            self._drop(name)
            self.failures.append(PluginFailure(name, distribution, _describe(exc)))
            return False
        return True

    def remove(self, name: str) -> None:
        """Unregister a plugin and everything it registered (tests use this)."""
        self._drop(name)

    def _register(
        self, plugin: object, name: str, distribution: str | None, version: str | None
    ) -> None:
        if name in self._infos or self._pm.has_plugin(name):
            raise PluginError(f"a plugin named {name!r} is already loaded")
        self._pm.register(plugin, name=name)
        hooks = []
        for caller in self._pm.get_hookcallers(plugin) or []:
            if not caller.has_spec():
                raise PluginError(f"implements unknown hook {caller.name!r}")
            hooks.append(caller.name)
        provided: list[str] = []

        def register(obj: Registrable) -> None:
            if not isinstance(obj, ChannelType | Dispatcher | Recommender):
                raise PluginError(
                    f"cannot register {obj!r}: not a ChannelType, Dispatcher or Recommender"
                )
            kind = _kind(obj)
            owner = self._owner.get((kind, obj.name))
            if owner is not None:
                raise PluginError(f"{kind} {obj.name!r} is already registered by {owner!r}")
            self._check_implements(name, obj, hooks)
            self._owner[(kind, obj.name)] = name
            table = cast(dict[str, Registrable], self._table(kind))
            table[obj.name] = obj
            provided.append(f"{kind}:{obj.name}")

        for impl in self._pm.hook.omnicrm_register.get_hookimpls():
            if impl.plugin_name == name:
                impl.function(register=register)
        product_hooks = [h for h in hooks if h != "omnicrm_register"]
        if product_hooks and not provided:
            raise PluginError(
                f"implements {', '.join(product_hooks)} but registered nothing: "
                "is omnicrm_register marked with @omnicrm.hookimpl?"
            )
        self._infos[name] = PluginInfo(
            name, version, distribution, tuple(sorted(hooks)), tuple(provided)
        )

    def _check_implements(self, plugin: str, obj: Registrable, hooks: list[str]) -> None:
        needed: list[str] = []
        if isinstance(obj, ChannelType):
            if not obj.streams:
                raise PluginError(f"channel {obj.name!r} offers no stream")
            needed = [_STREAM_HOOKS[Stream(s)] for s in obj.streams]
        elif isinstance(obj, Dispatcher):
            needed = ["omnicrm_dispatch_message"]
        else:
            needed = ["omnicrm_recommend"]
        missing = [hook for hook in needed if hook not in hooks]
        if missing:
            raise PluginError(
                f"{_kind(obj)} {obj.name!r} needs hook(s) {', '.join(missing)} "
                f"which plugin {plugin!r} does not implement"
            )

    def _table(self, kind: str) -> dict[str, Any]:
        tables: dict[str, dict[str, Any]] = {
            "channel": self.channel_types,
            "dispatcher": self.dispatchers,
            "recommender": self.recommenders,
        }
        return tables[kind]

    def _drop(self, name: str) -> None:
        for key, owner in list(self._owner.items()):
            if owner == name:
                del self._owner[key]
                del self._table(key[0])[key[1]]
        self._infos.pop(name, None)
        if self._pm.has_plugin(name):
            self._pm.unregister(name=name)

    @property
    def plugins(self) -> list[PluginInfo]:
        """The loaded plugins, by name."""
        return sorted(self._infos.values(), key=lambda info: info.name)

    def channel_type(self, name: str) -> ChannelType:
        """The channel type called ``name``; a ConfigError lists the known ones if absent."""
        try:
            return self.channel_types[name]
        except KeyError:
            known = ", ".join(sorted(self.channel_types)) or "none installed"
            raise ConfigError(f"unknown channel {name!r} (known: {known})") from None

    def _owned_caller(self, kind: str, name: str, hook: str) -> pluggy.HookCaller:
        owner = self._owner[(kind, name)]
        others = [p for p in self._pm.get_plugins() if self._pm.get_name(p) != owner]
        return self._pm.subset_hook_caller(hook, remove_plugins=others)

    def open_stream(self, ctx: StreamContext[BaseModel]) -> Iterable[Customer | Order | Checkpoint]:
        """Call the stream hook of the plugin that owns ``ctx.channel``."""
        self.channel_type(ctx.channel)
        caller = self._owned_caller("channel", ctx.channel, _STREAM_HOOKS[ctx.stream])
        result = caller(ctx=ctx)
        if result is None:
            raise PluginError(f"channel {ctx.channel!r} returned nothing for stream {ctx.stream}")
        return cast(Iterable[Customer | Order | Checkpoint], result)

    def recommend(self, request: RecommendationRequest) -> list[ScoredProduct]:
        """Ask the recommender named in ``request``."""
        if request.recommender not in self.recommenders:
            known = ", ".join(sorted(self.recommenders)) or "none installed"
            raise ConfigError(f"unknown recommender {request.recommender!r} (known: {known})")
        caller = self._owned_caller("recommender", request.recommender, "omnicrm_recommend")
        result = caller(request=request)
        if result is None:
            raise PluginError(f"recommender {request.recommender!r} returned nothing")
        ranked = sorted(cast(list[ScoredProduct], result), key=lambda s: (-s.score, s.product_id))
        return ranked[: request.limit]

    def dispatch(
        self,
        dispatcher: str,
        message: Message,
        settings: BaseModel,
        *,
        consents: Sequence[Consent],
    ) -> DispatchOutcome:
        """Deliver ``message`` through ``dispatcher`` if the customer consented to its medium.

        ``consents`` are the customer's; without an opted-in consent for the message's
        medium the message is rejected here and the plugin is never called.
        """
        if dispatcher not in self.dispatchers:
            known = ", ".join(sorted(self.dispatchers)) or "none installed"
            raise ConfigError(f"unknown dispatcher {dispatcher!r} (known: {known})")
        spec = self.dispatchers[dispatcher]
        if spec.medium != message.medium:
            raise PluginError(
                f"dispatcher {dispatcher!r} sends {spec.medium}, not {message.medium}"
            )
        if not any(
            c.medium == message.medium and c.state == ConsentState.OPTED_IN for c in consents
        ):
            return DispatchOutcome(
                DeliveryStatus.REJECTED,
                error=f"customer {message.customer_id} has not opted in to {message.medium}",
            )
        caller = self._owned_caller("dispatcher", dispatcher, "omnicrm_dispatch_message")
        result = caller(message=message, settings=settings)
        if not isinstance(result, DispatchOutcome):
            raise PluginError(
                f"dispatcher {dispatcher!r} returned {result!r}, not a DispatchOutcome"
            )
        return result


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"
