"""``omnicrm.toml``: the store, the scheduler, the shops and their connections.

A shop (``[shops.ID]``) is one client business: one customer base, with its name,
timezone, currency and CRM settings (``[shops.ID.identity]`` and the like override the
top-level ``[identity]``, ``[points]``, ``[analytics]``, ``[products]`` and ``[recommend]``
(its ``items`` and ``weights``) for that shop only). A file without ``[shops]`` has one
shop, ``default``. Every connection belongs to one shop (``shop = "ID"``; with one shop
it may be left out).

A connection names a channel type and gives its settings, validated by the pydantic model
the channel's plugin registered. Secrets are never written in the file: a value written
``{ env = "NAME" }`` is read from the environment variable NAME, one written
``{ file = "PATH" }`` from a file only its owner may read (PATH relative to the config's
folder).

Errors name the file, the line and the key. Problems in one connection leave the others
usable: they are collected in :attr:`Config.invalid`. A secret written in the file
itself (a token, a password in the store URL) is accepted, with a warning in
:attr:`Config.warnings` saying how to move it to the environment. Hostile values (a
duration of a trillion days, arrays nested thousands deep) are errors like any other.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import re
import tomllib
import urllib.parse
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from omnicrm.core.channels import DEFAULT_SHOP, Connection, format_duration
from omnicrm.core.settings import (
    DATA_DIR_ENV,
    MAX_DURATION,
    Duration,
    SchedulerSection,
    TimeZoneName,
    check_cron,
    data_dir,
    default_store_url,
    parse_duration,
)
from omnicrm.core.signing import check_secret
from omnicrm.crm.analytics.settings import AnalyticsSettings
from omnicrm.crm.identity import IdentitySettings
from omnicrm.crm.points.settings import PointsSettings
from omnicrm.crm.products import ProductSettings
from omnicrm.crm.settings import CrmSection
from omnicrm.engage.onsite.settings import OFFER_NAME, OfferSettings, StorefrontSettings
from omnicrm.engage.settings import MessagingSettings, RecommendSection, RecommendSettings
from omnicrm.errors import ConfigError

__all__ = [
    "CONFIG_ENV",
    "DATA_DIR_ENV",
    "DEFAULT_SHOP",
    "MAX_DURATION",
    "Config",
    "Connection",
    "CrmSection",
    "SchedulerSection",
    "Shop",
    "WebSection",
    "data_dir",
    "default_store_url",
    "format_duration",
    "load_config",
    "parse_duration",
]

CONFIG_ENV = "OMNICRM_CONFIG"
DEFAULT_CONFIG_NAME = "omnicrm.toml"

MAX_NESTING = 64  # arrays and inline tables inside one another
# Keys whose value is a secret, whatever the model says: they belong in the environment.
_SECRET_KEY = re.compile(
    r"(?:^|_)(?:token|password|passwd|secret|api_?key|private_?key|credentials?)$", re.I
)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StoreSection(_Section):
    url: str | None = None


class WebSection(_Section):
    """``[web]``: the public face of ``omnicrm webhooks serve`` (unsubscribe, tracking)."""

    base_url: str | None = Field(
        default=None,
        description="The public https address the web app is reached at; links in "
        "messages point there.",
    )
    secret: SecretStr | None = Field(
        default=None,
        description='The links\' signing secret: write  secret = { env = "NAME" }; '
        "without it one is made and kept in the data dir.",
    )

    @field_validator("base_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip().rstrip("/")
        parts = urllib.parse.urlsplit(value)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ValueError(
                f"must be an https URL such as 'https://crm.example.jp', not {value!r}"
            )
        if parts.scheme == "http" and parts.hostname not in ("localhost", "127.0.0.1", "::1"):
            raise ValueError("must be https (only a loopback address may be http)")
        if parts.query or parts.fragment:
            raise ValueError("must have no ?query or #fragment")
        return value

    @field_validator("secret")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            check_secret(value.get_secret_value())
        return value


class ConnectionSection(_Section):
    channel: str
    shop: str | None = None
    enabled: bool = True
    every: Duration | None = None
    cron: str | None = None
    lookback: Duration = dt.timedelta(minutes=10)
    batch_size: int = Field(default=1000, ge=1, le=100_000)
    settings: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_schedule(self) -> ConnectionSection:
        if self.every is not None and self.cron is not None:
            raise ValueError("give either 'every' or 'cron', not both")
        return self

    @field_validator("every")
    @classmethod
    def _at_least_a_second(cls, value: dt.timedelta | None) -> dt.timedelta | None:
        if value is not None and value.total_seconds() < 1:
            raise ValueError("'every' must be at least 1s")
        return value

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str | None) -> str | None:
        return check_cron(value)


_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
_CURRENCY = re.compile(r"[A-Z]{3}")


class ShopSection(_Section):
    name: str | None = Field(default=None, max_length=200)
    timezone: TimeZoneName | None = None
    currency: str = "JPY"
    # Overrides of the top-level sections, validated once merged onto them.
    identity: dict[str, Any] = Field(default_factory=dict)
    points: dict[str, Any] = Field(default_factory=dict)
    analytics: dict[str, Any] = Field(default_factory=dict)
    messaging: dict[str, Any] = Field(default_factory=dict)
    products: dict[str, Any] = Field(default_factory=dict)
    storefront: dict[str, Any] = Field(default_factory=dict)
    recommend: dict[str, Any] = Field(default_factory=dict)
    offers: dict[str, OfferSettings] = Field(default_factory=dict)

    @field_validator("currency")
    @classmethod
    def _iso_currency(cls, value: str) -> str:
        if not _CURRENCY.fullmatch(value):
            raise ValueError(f"currency must be an ISO 4217 code such as 'JPY', not {value!r}")
        return value


@dataclass(frozen=True)
class Shop:
    """One client business: one customer base and the settings its CRM runs with."""

    id: str
    name: str
    timezone: str = "Asia/Tokyo"
    currency: str = "JPY"
    identity: IdentitySettings = field(default_factory=IdentitySettings)
    points: PointsSettings = field(default_factory=PointsSettings)
    analytics: AnalyticsSettings = field(default_factory=AnalyticsSettings)
    messaging: MessagingSettings = field(default_factory=MessagingSettings)
    products: ProductSettings = field(default_factory=ProductSettings)
    storefront: StorefrontSettings = field(default_factory=StorefrontSettings)
    offers: dict[str, OfferSettings] = field(default_factory=dict)
    recommend: RecommendSettings = field(default_factory=RecommendSettings)


class _File(_Section):
    store: StoreSection = Field(default_factory=StoreSection)
    scheduler: SchedulerSection = Field(default_factory=SchedulerSection)
    crm: CrmSection = Field(default_factory=CrmSection)
    recommend: RecommendSection = Field(default_factory=RecommendSection)
    web: WebSection = Field(default_factory=WebSection)
    identity: IdentitySettings = Field(default_factory=IdentitySettings)
    points: PointsSettings = Field(default_factory=PointsSettings)
    analytics: AnalyticsSettings = Field(default_factory=AnalyticsSettings)
    messaging: MessagingSettings = Field(default_factory=MessagingSettings)
    products: ProductSettings = Field(default_factory=ProductSettings)
    storefront: StorefrontSettings = Field(default_factory=StorefrontSettings)
    offers: dict[str, OfferSettings] = Field(default_factory=dict)
    connections: dict[str, ConnectionSection] = Field(default_factory=dict)


@dataclass(frozen=True)
class Config:
    """A loaded ``omnicrm.toml``."""

    path: Path | None
    store_url: str
    scheduler: SchedulerSection
    connections: dict[str, Connection] = field(default_factory=dict)
    invalid: dict[str, ConfigError] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()  # e.g. a secret written in the file: 'file:line [key]: ...'
    crm: CrmSection = field(default_factory=CrmSection)
    recommend: RecommendSection = field(default_factory=RecommendSection)
    web: WebSection = field(default_factory=WebSection)
    identity: IdentitySettings = field(default_factory=IdentitySettings)
    points: PointsSettings = field(default_factory=PointsSettings)
    analytics: AnalyticsSettings = field(default_factory=AnalyticsSettings)
    messaging: MessagingSettings = field(default_factory=MessagingSettings)
    products: ProductSettings = field(default_factory=ProductSettings)
    storefront: StorefrontSettings = field(default_factory=StorefrontSettings)
    offers: dict[str, OfferSettings] = field(default_factory=dict)
    # Empty: the one implicit shop, DEFAULT_SHOP, with the top-level settings.
    shops: dict[str, Shop] = field(default_factory=dict)

    def all_shops(self) -> dict[str, Shop]:
        """Every shop, by id: the configured ones, or the implicit ``default``."""
        if self.shops:
            return self.shops
        return {
            DEFAULT_SHOP: Shop(
                id=DEFAULT_SHOP,
                name=DEFAULT_SHOP,
                timezone=self.scheduler.timezone,
                identity=self.identity,
                points=self.points,
                analytics=self.analytics,
                messaging=self.messaging,
                products=self.products,
                storefront=self.storefront,
                offers=self.offers,
                recommend=self.recommend,
            )
        }

    def shop(self, name: str | None) -> Shop:
        """The shop ``name``; None is the only shop, an error naming the shops when
        there are several."""
        shops = self.all_shops()
        if name is None:
            if len(shops) == 1:
                return next(iter(shops.values()))
            raise ConfigError(
                f"{len(shops)} shops are configured: name one with --shop"
                f" ({', '.join(sorted(shops))})",
                file=self.path,
            )
        if name not in shops:
            raise ConfigError(
                f"no shop named {name!r} (shops: {', '.join(sorted(shops))})", file=self.path
            )
        return shops[name]

    def connections_of(self, shop: str) -> dict[str, Connection]:
        """The valid connections of ``shop``, by name."""
        return {n: c for n, c in self.connections.items() if c.shop == shop}

    def connection_shops(self) -> dict[str, str]:
        """Each valid connection's shop, by connection name (what the store is opened with)."""
        return {name: conn.shop for name, conn in self.connections.items()}

    @property
    def default_shop(self) -> str:
        """Where records of connections the config does not name belong: the only shop,
        else DEFAULT_SHOP."""
        shops = self.all_shops()
        return next(iter(shops)) if len(shops) == 1 else DEFAULT_SHOP

    def connection(self, name: str) -> Connection:
        """The valid connection ``name``, or the ConfigError that explains why not."""
        if name in self.invalid:
            raise self.invalid[name]
        if name not in self.connections:
            known = ", ".join(sorted([*self.connections, *self.invalid])) or "none configured"
            raise ConfigError(f"no connection named {name!r} (known: {known})", file=self.path)
        return self.connections[name]


def find_config(explicit: Path | None = None) -> Path:
    """Where the config is, or is written: ``--config``, ``$OMNICRM_CONFIG``, ./omnicrm.toml."""
    if explicit is not None:
        return explicit
    if os.environ.get(CONFIG_ENV):
        return Path(os.environ[CONFIG_ENV])
    return Path(DEFAULT_CONFIG_NAME)


def user_config() -> Path:
    """The config commands fall back to (``omnicrm demo`` writes one): in the data dir."""
    return data_dir() / DEFAULT_CONFIG_NAME


def config_to_read(explicit: Path | None = None) -> Path:
    """The config a command reads: as :func:`find_config`, but when neither ``--config``
    nor ``$OMNICRM_CONFIG`` is given and ./omnicrm.toml does not exist, the user config
    if there is one (so the demo's commands work from any directory)."""
    path = find_config(explicit)
    if explicit is None and not os.environ.get(CONFIG_ENV) and not path.exists():
        fallback = user_config()
        if fallback.is_file():
            return fallback
    return path


def load_config(
    path: Path,
    channel_settings: Mapping[str, type[BaseModel]],
    *,
    recommenders: Collection[str] | None = None,
) -> Config:
    """Read and validate ``path``. ``channel_settings`` maps channel names to settings models;
    ``recommenders`` names the installed recommenders ``[recommend] weights`` may name
    (None: not checked).

    Raises ConfigError when the file itself is unusable; problems of single connections
    are kept in ``Config.invalid`` so the other connections still run.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("file not found; run `omnicrm init` to write one", file=path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read: {exc}", file=path) from None
    locate = _Locator(text)
    deep = _too_deep(text)
    if deep is not None:
        raise ConfigError(
            f"arrays and tables nested more than {MAX_NESTING} deep", file=path, line=deep
        )
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = re.search(r"line (\d+)", str(exc))
        raise ConfigError(
            f"not valid TOML: {exc}", file=path, line=int(line.group(1)) if line else None
        ) from None
    except RecursionError:  # pragma: no cover - _too_deep catches what could cause it
        raise ConfigError(f"nested more than {MAX_NESTING} deep", file=path) from None
    declared = _declared_secrets(document.get("connections"), channel_settings)
    warnings = [_secret_warning(at, path, locate) for at in _inline_secrets(document, (), declared)]
    warnings += _renamed_warnings(document.get("connections"), channel_settings, path, locate)

    raw_connections = document.pop("connections", {})
    if not isinstance(raw_connections, dict):
        raise ConfigError(
            "must be a table", file=path, line=locate(("connections",)), key="connections"
        )
    raw_shops = document.pop("shops", {})
    if not isinstance(raw_shops, dict):
        raise ConfigError("must be a table", file=path, line=locate(("shops",)), key="shops")
    top = _resolve_env(document, (), path, locate)
    try:
        parsed = _File.model_validate(top)
    except ValidationError as exc:
        raise _from_validation(exc, (), path, locate) from None
    shops = {
        shop_id: _shop(shop_id, raw, top, parsed, path, locate)
        for shop_id, raw in raw_shops.items()
    }
    if parsed.offers and len(shops) > 1:
        raise ConfigError(
            "with several shops, each writes its offers under [shops.ID.offers.NAME]",
            file=path,
            line=locate(("offers", next(iter(parsed.offers)))),
            key="offers",
        )

    connections: dict[str, Connection] = {}
    invalid: dict[str, ConfigError] = {}
    for name, raw in raw_connections.items():
        prefix = ("connections", name)
        try:
            connection = _connection(name, raw, prefix, path, locate, channel_settings)
            connections[name] = _in_shop(connection, raw, shops, prefix, path, locate)
        except ConfigError as exc:
            invalid[name] = exc
    config = Config(
        path=path,
        store_url=parsed.store.url or default_store_url(),
        scheduler=parsed.scheduler,
        connections=connections,
        invalid=invalid,
        warnings=tuple(warnings),
        crm=parsed.crm,
        recommend=parsed.recommend,
        web=parsed.web,
        identity=parsed.identity,
        points=parsed.points,
        analytics=parsed.analytics,
        messaging=parsed.messaging,
        products=parsed.products,
        storefront=parsed.storefront,
        offers=parsed.offers,
        shops=shops,
    )
    _check_storefronts(config, path, locate)
    if recommenders is not None:
        _check_weights(top, raw_shops, recommenders, path, locate)
    return config


def _check_weights(
    top: dict[str, Any],
    raw_shops: dict[str, Any],
    recommenders: Collection[str],
    path: Path,
    locate: _Locator,
) -> None:
    """Every recommender ``[recommend] weights`` (top-level or a shop's) names is installed."""
    written: list[tuple[tuple[str, ...], Any]] = [(("recommend",), top.get("recommend"))]
    written += [(("shops", i, "recommend"), raw.get("recommend")) for i, raw in raw_shops.items()]
    for prefix, section in written:
        weights = section.get("weights") if isinstance(section, dict) else None
        for name in weights or {}:
            if name not in recommenders:
                at = (*prefix, "weights", name)
                known = ", ".join(sorted(recommenders)) or "none installed"
                raise ConfigError(
                    f"unknown recommender {name!r} (installed: {known}; see `omnicrm plugins`)",
                    file=path,
                    line=locate(at),
                    key=".".join(at),
                )


def _shop(
    shop_id: str, raw: Any, top: dict[str, Any], parsed: _File, path: Path, locate: _Locator
) -> Shop:
    """``[shops.ID]``, its CRM settings merged onto the top-level ones."""
    prefix = ("shops", shop_id)
    if not _NAME.fullmatch(shop_id):
        raise ConfigError(
            "shop ids use letters, digits, '-', '_' and '.' (at most 100)",
            file=path,
            line=locate(prefix),
            key=".".join(prefix),
        )
    if not isinstance(raw, dict):
        raise ConfigError("must be a table", file=path, line=locate(prefix), key=".".join(prefix))
    raw = _resolve_env(raw, prefix, path, locate)
    try:
        section = ShopSection.model_validate(raw)
    except ValidationError as exc:
        raise _from_validation(exc, prefix, path, locate) from None
    merged: dict[str, Any] = {}
    for key, model in (
        ("identity", IdentitySettings),
        ("points", PointsSettings),
        ("analytics", AnalyticsSettings),
        ("messaging", MessagingSettings),
        ("products", ProductSettings),
        ("storefront", StorefrontSettings),
    ):
        override = getattr(section, key)
        if not override:
            merged[key] = getattr(parsed, key)
            continue
        base = top.get(key) or {}
        try:
            merged[key] = model.model_validate({**base, **override})
        except ValidationError as exc:
            raise _from_validation(exc, (*prefix, key), path, locate) from None
    return Shop(
        id=shop_id,
        name=section.name or shop_id,
        timezone=section.timezone or parsed.scheduler.timezone,
        currency=section.currency,
        offers=section.offers or parsed.offers,
        recommend=_shop_recommend(section.recommend, top, parsed, prefix, path, locate),
        **merged,
    )


def _shop_recommend(
    override: dict[str, Any],
    top: dict[str, Any],
    parsed: _File,
    prefix: tuple[str, ...],
    path: Path,
    locate: _Locator,
) -> RecommendSettings:
    """``[shops.ID.recommend]`` over the top-level ``[recommend]``: its weights replace
    the top-level's only for the recommenders it names."""
    if not override:
        return parsed.recommend
    base = dict(top.get("recommend") or {})
    base.pop("write_back", None)  # one schedule writes back every shop
    weights = override.get("weights")
    if isinstance(weights, dict) and isinstance(base.get("weights"), dict):
        override = {**override, "weights": {**base["weights"], **weights}}
    try:
        return RecommendSettings.model_validate({**base, **override})
    except ValidationError as exc:
        raise _from_validation(exc, (*prefix, "recommend"), path, locate) from None


def _check_storefronts(config: Config, path: Path, locate: _Locator) -> None:
    """Each shop's storefront names connections of its own shop, offers have usable
    names, and no two shops share a public key (it is what picks the shop)."""
    keys: dict[str, str] = {}
    for shop_id, shop in config.all_shops().items():
        prefix = ("shops", shop_id) if config.shops else ()
        for name in shop.offers:
            if not OFFER_NAME.match(name):
                at = (*prefix, "offers", name)
                raise ConfigError(
                    "offer names use letters, digits, '-', '_' and '.' (at most 100)",
                    file=path,
                    line=locate(at),
                    key=".".join(at),
                )
        front = shop.storefront
        for key in ("customer_connection", "shopify_connection"):
            named = getattr(front, key)
            if named is None or named in config.invalid:  # its own error says why
                continue
            at = (*prefix, "storefront", key)
            connection = config.connections.get(named)
            if connection is None or connection.shop != shop_id:
                raise ConfigError(
                    f"no valid connection {named!r} in shop {shop_id!r}",
                    file=path,
                    line=locate(at),
                    key=".".join(at),
                )
        if front.public_key is not None:
            if front.public_key in keys:
                at = (*prefix, "storefront", "public_key")
                raise ConfigError(
                    f"shop {keys[front.public_key]!r} has the same public key: each shop's differs",
                    file=path,
                    line=locate(at),
                    key=".".join(at),
                )
            keys[front.public_key] = shop_id


def _in_shop(
    connection: Connection,
    raw: dict[str, Any],
    shops: dict[str, Shop],
    prefix: tuple[str, ...],
    path: Path,
    locate: _Locator,
) -> Connection:
    """``connection`` with its shop: the one it names, or the only one."""
    named = raw.get("shop")
    known = ", ".join(sorted(shops)) if shops else DEFAULT_SHOP
    where = (*prefix, "shop")
    if named is None:
        if len(shops) > 1:
            raise ConfigError(
                f'names no shop, and {len(shops)} are configured: add shop = "ID" (shops: {known})',
                file=path,
                line=locate(prefix),
                key=".".join(where),
            )
        shop = next(iter(shops)) if shops else DEFAULT_SHOP
    elif named in shops or (not shops and named == DEFAULT_SHOP):
        shop = named
    else:
        hint = "" if shops else f"; add a [shops.{named}] table"
        raise ConfigError(
            f"no shop named {named!r} (shops: {known}){hint}",
            file=path,
            line=locate(where),
            key=".".join(where),
        )
    return dataclasses.replace(connection, shop=shop)


def _connection(
    name: str,
    raw: Any,
    prefix: tuple[str, ...],
    path: Path,
    locate: _Locator,
    channel_settings: Mapping[str, type[BaseModel]],
) -> Connection:
    if not _NAME.fullmatch(name):
        raise ConfigError(
            "connection names use letters, digits, '-', '_' and '.' (at most 100)",
            file=path,
            line=locate(prefix),
            key=".".join(prefix),
        )
    if not isinstance(raw, dict):
        raise ConfigError("must be a table", file=path, line=locate(prefix), key=".".join(prefix))
    try:
        section = ConnectionSection.model_validate(
            {k: v for k, v in raw.items() if k != "settings"}
        )
    except ValidationError as exc:
        raise _from_validation(exc, prefix, path, locate) from None
    model = channel_settings.get(section.channel)
    if model is None:
        known = ", ".join(sorted(channel_settings)) or "none installed"
        raise ConfigError(
            f"unknown channel {section.channel!r} (installed: {known}; see `omnicrm plugins`)",
            file=path,
            line=locate((*prefix, "channel")),
            key=".".join((*prefix, "channel")),
        )
    settings_path = (*prefix, "settings")
    raw_settings = raw.get("settings", {})
    if not isinstance(raw_settings, dict):
        raise ConfigError(
            "must be a table", file=path, line=locate(settings_path), key=".".join(settings_path)
        )
    resolved = _resolve_env(raw_settings, settings_path, path, locate)
    try:
        settings = model.model_validate(resolved)
    except ValidationError as exc:
        raise _from_validation(exc, settings_path, path, locate) from None
    return Connection(
        name=name,
        channel=section.channel,
        settings=settings,
        enabled=section.enabled,
        every=section.every,
        cron=section.cron,
        lookback=section.lookback,
        batch_size=section.batch_size,
    )


def _resolve_env(value: Any, where: tuple[str, ...], path: Path, locate: _Locator) -> Any:
    """Replace ``{ env = "NAME" }`` tables by the environment variable's value."""
    if isinstance(value, dict):
        if set(value) == {"env"}:
            name = value["env"]
            key = ".".join(where)
            if not isinstance(name, str) or not name:
                raise ConfigError(
                    "'env' must name an environment variable",
                    file=path,
                    line=locate(where),
                    key=key,
                )
            if name not in os.environ:
                raise ConfigError(
                    f"environment variable {name} is not set",
                    file=path,
                    line=locate(where),
                    key=key,
                )
            return os.environ[name]
        if set(value) == {"file"}:
            return _secret_file(value["file"], ".".join(where), path, locate(where))
        return {k: _resolve_env(v, (*where, k), path, locate) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve_env(v, (*where, str(i)), path, locate) for i, v in enumerate(value)]
    return value


def _secret_file(name: Any, key: str, path: Path, line: int | None) -> str:
    """The secret kept in file ``name`` (relative to the config's folder): its text
    without the final newline. Only its owner may read it (mode 0600), as ssh asks of
    a private key, so a secret moved out of the config is not left readable to all."""
    if not isinstance(name, str) or not name:
        raise ConfigError(
            "'file' must name a file holding the secret", file=path, line=line, key=key
        )
    secret = path.parent / Path(name).expanduser()
    try:
        mode = secret.stat().st_mode
        if os.name == "posix" and mode & 0o077:
            raise ConfigError(
                f"{secret} may be read by others than its owner: chmod 600 it",
                file=path,
                line=line,
                key=key,
            )
        text = secret.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(
            f"cannot read {secret}: {reason}", file=path, line=line, key=key
        ) from None
    value = text.removesuffix("\n").removesuffix("\r")
    if not value:
        raise ConfigError(f"{secret} is empty", file=path, line=line, key=key)
    return value


def _from_validation(
    exc: ValidationError, prefix: tuple[str, ...], path: Path, locate: _Locator
) -> ConfigError:
    first = exc.errors(include_url=False, include_input=False)[0]
    loc = (*prefix, *(str(part) for part in first["loc"]))
    reason = first["msg"].removeprefix("Value error, ")
    if first["type"] == "missing":
        reason = "required key is missing"
    elif first["type"] == "extra_forbidden":
        reason = "unknown key"
    more = exc.error_count() - 1
    if more:
        reason += f" (and {more} more problem{'s' if more > 1 else ''})"
    return ConfigError(reason, file=path, line=locate(loc), key=".".join(loc))


def _too_deep(text: str) -> int | None:
    """The line where arrays and inline tables nest more than MAX_NESTING deep, if any.

    tomllib parses nesting by recursion, so such a file would crash it; this scan skips
    strings and comments and counts brackets."""
    depth, line, i, end = 0, 1, 0, len(text)
    while i < end:
        ch = text[i]
        if ch == "\n":
            line += 1
        elif ch == "#":
            stop = text.find("\n", i)
            i = end if stop < 0 else stop
            continue
        elif ch in "\"'":
            quote = ch * 3 if text.startswith(ch * 3, i) else ch
            i += len(quote)
            while i < end and not text.startswith(quote, i):
                if text[i] == "\\" and ch == '"':
                    i += 1
                if i < end and text[i] == "\n":
                    line += 1
                i += 1
            i += len(quote)
            continue
        elif ch in "[{":
            depth += 1
            if depth > MAX_NESTING:
                return line
        elif ch in "]}":
            depth = max(0, depth - 1)
        i += 1
    return None


def _inline_secrets(
    value: Any, where: tuple[str, ...], declared: set[tuple[str, ...]]
) -> list[tuple[str, ...]]:
    """The keys under ``where`` holding a secret written in the file rather than read
    from the environment: a URL with a password, a key named like a secret, or one of
    ``declared`` (the settings their channel's model types as secret)."""
    if not isinstance(value, dict):
        return []
    found: list[tuple[str, ...]] = []
    for key, item in value.items():
        at = (*where, str(key))
        if isinstance(item, dict):
            found += _inline_secrets(item, at, declared)
        elif (
            isinstance(item, str)
            and item
            and (at in declared or _SECRET_KEY.search(str(key)) or _has_password(item))
        ):
            found.append(at)
    return found


def _declared_secrets(
    connections: Any, channel_settings: Mapping[str, type[BaseModel]]
) -> set[tuple[str, ...]]:
    """The paths of the connection settings their channel's model types as secret."""
    paths: set[tuple[str, ...]] = set()
    if not isinstance(connections, dict):
        return paths
    for name, raw in connections.items():
        channel = raw.get("channel") if isinstance(raw, dict) else None
        model = channel_settings.get(channel) if isinstance(channel, str) else None
        for field_name, info in (model.model_fields if model else {}).items():
            if "Secret" in str(info.annotation):
                paths.add(("connections", str(name), "settings", field_name))
    return paths


def _has_password(value: str) -> bool:
    if "://" not in value:
        return False
    try:
        return bool(urllib.parse.urlsplit(value).password)
    except ValueError:
        return False


def _renamed_warnings(
    raw_connections: Any,
    channel_settings: Mapping[str, type[BaseModel]],
    path: Path,
    locate: _Locator,
) -> list[str]:
    """A warning per setting written under its old name. A settings model lists its
    renamed keys in ``renamed_settings`` (old -> new) and still reads the old ones."""
    found: list[str] = []
    if not isinstance(raw_connections, dict):
        return found
    for name, raw in raw_connections.items():
        if not isinstance(raw, dict) or not isinstance(raw.get("settings"), dict):
            continue
        channel = raw.get("channel")
        model = channel_settings.get(channel) if isinstance(channel, str) else None
        renamed: Mapping[str, str] = getattr(model, "renamed_settings", None) or {}
        for old, new in renamed.items():
            if old in raw["settings"]:
                at = ("connections", str(name), "settings", old)
                found.append(
                    str(
                        ConfigError(
                            f"{old!r} is now called {new!r}: rename it (the old name is read"
                            " for now)",
                            file=path,
                            line=locate(at),
                            key=".".join(at),
                        )
                    )
                )
    return found


def _secret_warning(at: tuple[str, ...], path: Path, locate: _Locator) -> str:
    variable = (
        "OMNICRM_STORE_URL"
        if at == ("store", "url")
        else re.sub(r"[^A-Z0-9]+", "_", "_".join(at[1:] if at[0] == "connections" else at).upper())
    )
    variable = variable.replace("_SETTINGS_", "_").strip("_")
    where = ConfigError(
        "a secret is written in the file, where anyone who reads it sees it: move it to "
        f'the environment, writing  {at[-1]} = {{ env = "{variable}" }}  and setting '
        f"{variable}",
        file=path,
        line=locate(at),
        key=".".join(at),
    )
    return str(where)


class _Locator:
    """Finds the line a dotted key is written on (tomllib keeps no positions)."""

    _HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(?:#.*)?$")
    _KEY = re.compile(r"^\s*([A-Za-z0-9_\-]+|\"[^\"]*\"|'[^']*')\s*[=.]")

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()

    @staticmethod
    def _split(dotted: str) -> tuple[str, ...]:
        parts = re.findall(r'"[^"]*"|\'[^\']*\'|[^.\s]+', dotted)
        return tuple(p.strip("\"'") for p in parts)

    def __call__(self, key: tuple[str, ...]) -> int | None:
        table: tuple[str, ...] = ()
        best: int | None = None
        for number, line in enumerate(self.lines, start=1):
            header = self._HEADER.match(line)
            if header:
                table = self._split(header.group(1))
                if table and table == key[: len(table)]:
                    best = number
                continue
            match = self._KEY.match(line)
            if match and (*table, match.group(1).strip("\"'")) == key[: len(table) + 1]:
                best = number
                if len(table) + 1 == len(key):
                    return number
        return best


_HEADER = """\
# omnicrm configuration.
#
# Secrets are never written in this file: write  key = { env = "VARIABLE" }  and set
# VARIABLE in the environment of `omnicrm run`.

[store]
# Default: SQLite in the user's data dir. A shop or agency that outgrows one file:
# url = { env = "OMNICRM_STORE_URL" }   # postgresql://user@host:5432/omnicrm

[scheduler]
timezone = "Asia/Tokyo"     # cron schedules are read in this timezone
# max_workers = 4           # how many connections sync at the same time
# misfire_grace = "10m"     # how late a scheduled run may still start
# reconcile = "0 3 * * *"   # nightly: find records a platform deleted without notice

# The public face of `omnicrm webhooks serve`: messages' unsubscribe, open and click
# links point there, signed with the secret (unset: one is made in the data dir).
# [web]
# base_url = "https://crm.example.jp"
# secret = { env = "OMNICRM_WEB_SECRET" }

# The shop: one client business, one customer base. With a single shop its
# connections need not name it.
[shops.my-shop]
name = "My Shop"
timezone = "Asia/Tokyo"     # reports, segment dates and times shown are in this zone
currency = "JPY"
# This shop's CRM settings, overriding the top-level [identity], [points] and
# [analytics] for it alone:
# [shops.my-shop.points]
# earn_per = 200
# What recommendations never offer (SKU, product id or handle patterns; tags; types):
# [shops.my-shop.products]
# exclude = ["GFT-*"]
# exclude_tags = ["送料", "非推奨"]

# An agency adds each further client business as a shop of its own: its customers,
# segments, points and reports never mix with another shop's, even where both know
# the same person. Then every connection names its shop (`omnicrm connections` says
# which one does not), and commands that show customers take --shop ID:
# [shops.osaka-sweets]
# name = "大阪スイーツ"
# timezone = "Asia/Tokyo"
# currency = "JPY"
# [connections.osaka-sweets-shopify]
# shop = "osaka-sweets"
# channel = "shopify"
# ...

# One [connections.NAME] table per connection: one shop on one platform.
# `omnicrm connections` checks them; `omnicrm sync NAME` runs one now.
"""


def example_config(channels: Mapping[str, type[BaseModel]]) -> str:
    """A commented ``omnicrm.toml`` with an example connection per installed channel."""
    blocks = [_HEADER]
    for channel, model in sorted(channels.items()):
        name = f"my-{channel}-shop"
        lines = [
            f"[connections.{name}]",
            f'channel = "{channel}"',
            'shop = "my-shop"          # needed once there are several shops',
            'every = "15m"             # or: cron = "0 3 * * *"',
            'lookback = "10m"          # re-read this much before the cursor',
            f"[connections.{name}.settings]",
        ]
        for field_name, info in model.model_fields.items():
            lines.append(_example_setting(name, field_name, info))
        blocks.append("\n".join(f"# {line}" for line in lines) + "\n")
    if not channels:
        blocks.append("# No channel plugin is installed yet: see `omnicrm plugins`.\n")
    return "\n".join(blocks)


def _example_setting(connection: str, field_name: str, info: Any) -> str:
    from pydantic import SecretStr

    comment = f"  # {info.description}" if info.description else ""
    if info.annotation is SecretStr or "Secret" in str(info.annotation):
        variable = re.sub(r"[^A-Z0-9]+", "_", f"{connection}_{field_name}".upper())
        return f'{field_name} = {{ env = "{variable}" }}{comment}'
    if info.is_required():
        return (
            f'{field_name} = "..."  # required{"; " + info.description if info.description else ""}'
        )
    default = info.get_default(call_default_factory=True)
    if isinstance(default, bool):
        value = "true" if default else "false"
    elif isinstance(default, int | float):
        value = str(default)
    elif default is None:
        return f"# {field_name} = ...{comment}"
    else:
        value = '"' + str(default).replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f"{field_name} = {value}{comment}"
