"""The plugin host: loads plugins fail-soft and offers typed calls over ``pm.hook``.

Plugins come from the ``omnicrm`` entry-point group (built-in ones too). A plugin that
fails to import, to register, or that implements a hook that does not exist is reported
and left out; the rest load. Set ``OMNICRM_DISABLE_PLUGINS=name,name`` to skip plugins,
``OMNICRM_TRACE_PLUGINS=1`` to log every hook call with its plugin and duration.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, NoReturn, cast

import pluggy
from pydantic import BaseModel

from omnicrm.core import hookspecs
from omnicrm.core._public import public
from omnicrm.core.channels import ChannelType, Checkpoint, StreamContext
from omnicrm.core.dispatch import DeliveryStatus, Dispatcher, DispatchOutcome, Message
from omnicrm.core.recommend import RecommendationRequest, Recommender, ScoredProduct
from omnicrm.core.records import Consent, ConsentState, Record
from omnicrm.core.streams import stream_kind
from omnicrm.core.tracing import HookTracer, tracing_from_env
from omnicrm.core.webhooks import check_receiver
from omnicrm.errors import ConfigError, PluginError

ENTRY_POINT_GROUP = "omnicrm"
DISABLE_ENV = "OMNICRM_DISABLE_PLUGINS"

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


class Registrar:
    """What ``omnicrm_register`` receives: one method per kind of thing a plugin provides.

    Each method checks that the plugin implements the hooks the object needs and that
    its name is not taken by another plugin; a PluginError leaves the plugin out. The
    host makes one per plugin; a plugin only calls its methods.
    """

    def __init__(self, accept: Callable[[str, str, Registrable, list[str]], None]) -> None:
        self._accept = accept

    def channel_type(self, channel: ChannelType) -> None:
        """Register a channel type; the plugin must implement the hook of each stream."""
        _expect(channel, ChannelType, "channel_type")
        if not channel.streams:
            raise PluginError(f"channel {channel.name!r} offers no stream")
        if channel.webhooks is not None:
            check_receiver(channel.webhooks)  # and reads the form its actions take, once
        hooks = [stream_kind(stream).hook for stream in channel.streams]
        if channel.reconciles:
            unoffered = [str(s) for s in channel.reconciles if s not in channel.streams]
            if unoffered:
                raise PluginError(
                    f"channel {channel.name!r} reconciles {', '.join(unoffered)}, "
                    "which it does not offer"
                )
            hooks.append("omnicrm_reconcile")
        self._accept("channel", channel.name, channel, hooks)

    def dispatcher(self, dispatcher: Dispatcher) -> None:
        """Register a dispatcher; the plugin must implement ``omnicrm_dispatch_message``."""
        _expect(dispatcher, Dispatcher, "dispatcher")
        if dispatcher.webhooks is not None:
            check_receiver(dispatcher.webhooks)
        self._accept("dispatcher", dispatcher.name, dispatcher, ["omnicrm_dispatch_message"])

    def recommender(self, recommender: Recommender) -> None:
        """Register a recommender; the plugin must implement ``omnicrm_recommend``."""
        _expect(recommender, Recommender, "recommender")
        self._accept("recommender", recommender.name, recommender, ["omnicrm_recommend"])

    def __call__(self, obj: object) -> NoReturn:
        # The hook's argument was a callable once: say what replaced it.
        raise PluginError(
            f"register({obj!r}): call register.channel_type(...), register.dispatcher(...) "
            "or register.recommender(...) instead"
        )


public(Registrar)


def _expect(obj: object, cls: type, method: str) -> None:
    if not isinstance(obj, cls):
        raise PluginError(f"register.{method}({obj!r}): not a {cls.__name__}")


class Host:
    """The loaded plugins, what they registered, and typed calls into them."""

    def __init__(self, *, trace: bool | None = None) -> None:
        self._pm = pluggy.PluginManager(hookspecs.PROJECT)
        self._pm.add_hookspecs(hookspecs)
        if tracing_from_env() if trace is None else trace:
            tracer = HookTracer()
            self._pm.add_hookcall_monitoring(tracer.before, tracer.after)
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
        trace: bool | None = None,
    ) -> Host:
        """Load the installed plugins, then ``extra`` ones (name -> module or object).

        ``trace`` logs every hook call (default: ``OMNICRM_TRACE_PLUGINS``).
        """
        host = cls(trace=trace)
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

        def accept(kind: str, obj_name: str, obj: Registrable, needed: list[str]) -> None:
            owner = self._owner.get((kind, obj_name))
            if owner is not None:
                raise PluginError(f"{kind} {obj_name!r} is already registered by {owner!r}")
            missing = [hook for hook in needed if hook not in hooks]
            if missing:
                raise PluginError(
                    f"{kind} {obj_name!r} needs hook(s) {', '.join(missing)} "
                    f"which plugin {name!r} does not implement"
                )
            self._owner[(kind, obj_name)] = name
            self._table(kind)[obj_name] = obj
            provided.append(f"{kind}:{obj_name}")

        if "omnicrm_register" in hooks:
            # Through the hook (not the function) so tracing sees it too.
            others = [p for p in self._pm.get_plugins() if p is not plugin]
            caller = self._pm.subset_hook_caller("omnicrm_register", remove_plugins=others)
            caller(register=Registrar(accept))
        product_hooks = [h for h in hooks if h != "omnicrm_register"]
        if product_hooks and not provided:
            raise PluginError(
                f"implements {', '.join(product_hooks)} but registered nothing: "
                "is omnicrm_register marked with @omnicrm.hookimpl?"
            )
        self._infos[name] = PluginInfo(
            name, version, distribution, tuple(sorted(hooks)), tuple(provided)
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

    def open_stream(self, ctx: StreamContext[BaseModel]) -> Iterable[Record | Checkpoint]:
        """Call the stream hook of the plugin that owns ``ctx.channel``."""
        self.channel_type(ctx.channel)
        caller = self._owned_caller("channel", ctx.channel, stream_kind(ctx.stream).hook)
        result = caller(ctx=ctx)
        if result is None:
            raise PluginError(f"channel {ctx.channel!r} returned nothing for stream {ctx.stream}")
        return cast(Iterable[Record | Checkpoint], result)

    def reconcile(self, ctx: StreamContext[BaseModel], stored: frozenset[str]) -> list[str]:
        """Ask the plugin that owns ``ctx.channel`` which ``stored`` ids of ``ctx.stream``
        the platform no longer has; a PluginError if it names an id not stored."""
        channel = self.channel_type(ctx.channel)
        if ctx.stream not in channel.reconciles:
            raise PluginError(f"channel {ctx.channel!r} does not reconcile {ctx.stream}")
        caller = self._owned_caller("channel", ctx.channel, "omnicrm_reconcile")
        result = caller(ctx=ctx, stored=stored)
        if result is None:
            raise PluginError(f"channel {ctx.channel!r} returned nothing for reconciliation")
        gone = sorted(set(cast(Iterable[str], result)))
        strangers = [ident for ident in gone if ident not in stored]
        if strangers:
            raise PluginError(
                f"channel {ctx.channel!r} reconciled {ctx.stream} ids the store does not "
                f"hold: {', '.join(strangers[:5])}"
            )
        return gone

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

    def finish(self, dispatcher: str, settings: BaseModel, *, shop: str, campaign: str) -> None:
        """Tell ``dispatcher`` that a run of ``shop``'s ``campaign`` through it has ended
        (its :attr:`Dispatcher.finish`, when it has one)."""
        spec = self.dispatchers.get(dispatcher)
        if spec is None:
            known = ", ".join(sorted(self.dispatchers)) or "none installed"
            raise ConfigError(f"unknown dispatcher {dispatcher!r} (known: {known})")
        if spec.finish is not None:
            spec.finish(settings, shop, campaign)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"
