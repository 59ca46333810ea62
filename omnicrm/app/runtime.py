"""Everything a command needs, wired once: plugins, config, store and sync engine."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from omnicrm.app.config import Config, SchedulerSection, Shop, default_store_url, load_config
from omnicrm.core.host import Host
from omnicrm.core.scheduler import CronJob, IntervalJob
from omnicrm.core.store import Store
from omnicrm.core.sync import SyncEngine, SyncResult
from omnicrm.errors import ConfigError

log = logging.getLogger("omnicrm")

NIGHTLY_JOB = "crm:nightly"
CAMPAIGNS_JOB = "campaigns:"  # and the shop's id: one check per shop
WRITE_BACK_JOB = "recommend:write_back"

if TYPE_CHECKING:
    from omnicrm.crm.refresh import CrmSettings, RefreshResult
    from omnicrm.engage.recommend.writeback import WriteBackResult
    from omnicrm.engage.recovery import Recovery
    from omnicrm.engage.scheduled import Sent
    from omnicrm.engage.sender import Sender
    from omnicrm.engage.settings import MessagingSettings
    from omnicrm.engage.tracking import Links


def crm_jobs(config: Config, nightly: Callable[[], None]) -> list[CronJob]:
    """The CRM's scheduled jobs: ``nightly`` on ``[crm] nightly`` unless it is off."""
    if not config.crm.nightly:
        return []
    return [CronJob(NIGHTLY_JOB, "crm nightly", config.crm.nightly, nightly)]


@dataclass
class Runtime:
    """The loaded plugins and config, and the store and engine they lead to."""

    host: Host
    config: Config
    _store: Store | None = field(default=None, repr=False)
    _links: Links | None = field(default=None, repr=False)
    # Called with (connection, customer id) after each redaction: what a server keeps
    # in memory of people (the storefront's) is dropped with them.
    redacted: list[Callable[[str, str], None]] = field(default_factory=list, repr=False)

    @classmethod
    def load(cls, config_path: Path | None, *, host: Host | None = None) -> Runtime:
        """Load plugins, then the config at ``config_path`` (None: no file, defaults)."""
        host = host or Host.load()
        if config_path is None:
            config = Config(path=None, store_url=default_store_url(), scheduler=SchedulerSection())
        else:
            settings = {name: ct.settings for name, ct in host.channel_types.items()}
            config = load_config(config_path, settings, recommenders=host.recommenders)
        return cls(host, config)

    @property
    def store(self) -> Store:
        """The store, opened (and migrated) on first use."""
        if self._store is None:
            try:
                self._store = Store.open(
                    self.config.store_url,
                    shops=self.config.connection_shops(),
                    default_shop=self.config.default_shop,
                    shop_ids=self.config.all_shops(),
                )
            except ConfigError as exc:
                raise ConfigError(exc.reason, file=self.config.path, key=exc.key) from None
        return self._store

    def links(self) -> Links:
        """How messages link back to the web app: ``[web] base_url`` and the signing
        secret (``[web] secret``, else the one made and kept in the data dir)."""
        if self._links is None:
            from omnicrm.core.signing import installation_secret
            from omnicrm.engage.tracking import Links

            web = self.config.web
            secret = (
                web.secret.get_secret_value().encode("utf-8")
                if web.secret is not None
                else installation_secret()
            )
            self._links = Links(secret, web.base_url)
        return self._links

    def engine(self) -> SyncEngine:
        """The sync engine; each run ends with a CRM refresh unless the config says not to."""
        after = self._after_sync if self.config.crm.refresh_after_sync else None
        return SyncEngine(self.host, self.store, after_run=after)

    def shop(self, name: str | None = None) -> Shop:
        """The shop ``name`` (None: the only one; a ConfigError naming them if several)."""
        return self.config.shop(name)

    def crm_settings(self, shop: str | None = None) -> CrmSettings:
        """What the CRM runs with in ``shop`` (None: the only shop)."""
        from omnicrm.crm.refresh import CrmSettings

        chosen = self.config.shop(shop)
        return CrmSettings(
            shop=chosen.id,
            identity=chosen.identity,
            points=chosen.points,
            analytics=chosen.analytics,
            crm=self.config.crm,
            timezone=chosen.timezone,
            currency=chosen.currency,
        )

    def refresh(
        self, shop: str | None = None, *, full: bool = False, rebuild: bool = False
    ) -> RefreshResult:
        """Bring ``shop``'s profiles, scores and segment counts up to date (None: the
        only shop; see omnicrm.crm.refresh)."""
        # Imported here: the CRM pulls in numpy and scipy, which most commands never need.
        from omnicrm.crm.refresh import refresh

        return refresh(self.store, self.crm_settings(shop), full=full, rebuild=rebuild)

    def refresh_all(self, *, full: bool = False) -> dict[str, RefreshResult]:
        """:meth:`refresh` every shop, one after another; one shop's failure is logged
        and the others still refresh."""
        results: dict[str, RefreshResult] = {}
        for shop in sorted(self.config.all_shops()):
            try:
                results[shop] = self.refresh(shop, full=full)
            except Exception:
                log.exception("crm refresh of shop %s failed", shop)
        return results

    def nightly(self) -> None:
        """The nightly job, shop by shop: a full refresh (CLV fit, point expiry), then
        reconciliation."""
        import datetime as dt

        from omnicrm.crm.points import run_reconciliation

        for shop_id, shop in sorted(self.config.all_shops().items()):
            try:
                self.refresh(shop_id, full=True)
                found = run_reconciliation(
                    self.store, shop.points, dt.datetime.now(dt.UTC), shop=shop_id
                )
            except Exception:
                log.exception("crm nightly of shop %s failed", shop_id)
                continue
            if found.differences:
                log.warning(
                    "points of shop %s: %d balance(s) differ from the platform's",
                    shop_id,
                    len(found.differences),
                )

    def sender(self, shop: str | None = None) -> Sender:
        """A sender of ``shop``'s campaigns (None: the only shop), its links signed with
        the installation's secret."""
        from zoneinfo import ZoneInfo

        from omnicrm.engage.sender import Sender

        chosen = self.config.shop(shop)
        return Sender(
            self.store,
            self.host,
            shop=chosen.id,
            shop_name=chosen.name,
            settings=chosen.messaging,
            tz=ZoneInfo(chosen.timezone),
            links=self.links(),
            connections=self.config.connections,
            products=chosen.products,
            recommend_weights=chosen.recommend.weights,
        )

    def send_due(self, shop: str) -> list[Sent]:
        """Plan and send ``shop``'s campaigns whose scheduled time has come (see
        omnicrm.engage.scheduled)."""
        from omnicrm.engage.scheduled import send_due

        return send_due(self.sender(shop))

    def campaign_jobs(self) -> list[IntervalJob]:
        """One check for due campaigns (and due cart recovery messages) per shop that can
        send (a dispatcher configured), every ``[messaging] check_every``."""
        return [
            IntervalJob(
                f"{CAMPAIGNS_JOB}{shop_id}",
                f"campaigns of {shop_id}",
                shop.messaging.check_every,
                functools.partial(self._send_due, shop_id),
            )
            for shop_id, shop in sorted(self.config.all_shops().items())
            if shop.messaging.dispatchers
        ]

    def recover_carts(self, shop: str) -> Recovery | None:
        """Send ``shop``'s cart recovery messages that are due (see
        omnicrm.engage.recovery); None if the shop sends none."""
        from omnicrm.engage.recovery import recover_carts

        return recover_carts(self.sender(shop), currency=self.config.shop(shop).currency)

    def _send_due(self, shop: str) -> None:
        try:
            self.recover_carts(shop)
        except Exception:  # the shop's campaigns are still sent
            log.exception("cart recovery of shop %s failed", shop)
        self.send_due(shop)

    def write_back(self, shop: str | None = None) -> list[WriteBackResult]:
        """Write ``shop``'s recommendations (None: the only shop) to every connection of
        it that stores them (see omnicrm.engage.recommend.writeback)."""
        import datetime as dt

        from omnicrm.engage.recommend.writeback import write_back, writing_connections

        chosen = self.config.shop(shop)
        return [
            write_back(
                self.store,
                self.host,
                connection,
                products_settings=chosen.products,
                limit=chosen.recommend.items,
                weights=chosen.recommend.weights,
                now=dt.datetime.now(dt.UTC),
            )
            for connection in writing_connections(
                self.host, self.config.connections.values(), shop=chosen.id
            )
        ]

    def write_back_all(self) -> None:
        """:meth:`write_back` every shop; one shop's failure is logged, the others run."""
        for shop in sorted(self.config.all_shops()):
            try:
                self.write_back(shop)
            except Exception:
                log.exception("recommendation write-back of shop %s failed", shop)

    def redact_customer(
        self, connection: str, customer_id: str | None, order_ids: Sequence[str] = ()
    ) -> None:
        """:meth:`Store.redact_customer`, and the files kept outside the store: every
        dispatcher that keeps messages in files (postal DM runs) takes the person's out
        of them, before the store's redaction and once more after it (a message handed
        over in between; after it, nothing more is sent to them)."""
        if customer_id is None:
            self.store.redact_customer(connection, customer_id, order_ids)
            return
        from omnicrm.engage.personal import forget_files, messages_of_records

        with self.store.engine.connect() as conn:
            shop, messages = messages_of_records(conn, connection, [customer_id])
        settings = self._messaging(shop) if messages else None
        if shop is not None and settings is not None:
            forget_files(self.host, settings, shop, messages)
        self.store.redact_customer(connection, customer_id, order_ids)
        if shop is not None and settings is not None:
            changed = forget_files(self.host, settings, shop, messages)
            if changed:
                log.info("%s: redaction took them out of %s", connection, ", ".join(changed))
        for listener in self.redacted:
            listener(connection, customer_id)

    def write_export(
        self, connection: str, customer_id: str, request_id: str | None = None
    ) -> Path:
        """:meth:`Store.write_export`, with the files outside the store that hold the
        customer's messages (``message_files``: each dispatcher's runs)."""
        from omnicrm.engage.personal import files_holding, messages_of_records

        with self.store.engine.connect() as conn:
            shop, messages = messages_of_records(conn, connection, [customer_id])
        settings = self._messaging(shop) if messages else None
        held = (
            files_holding(self.host, settings, shop, messages)
            if shop is not None and settings is not None
            else []
        )
        return self.store.write_export(
            connection, customer_id, request_id, extra={"message_files": held}
        )

    def _messaging(self, shop: str | None) -> MessagingSettings | None:
        """``shop``'s messaging settings; None (said in the log) for a shop the config
        no longer has, whose dispatchers' files cannot be found."""
        if shop is None:
            return None
        try:
            return self.config.shop(shop).messaging
        except ConfigError as exc:
            log.warning("shop %s: its dispatchers' files not reached: %s", shop, exc)
            return None

    def jobs(self) -> list[CronJob | IntervalJob]:
        """The scheduled jobs beside the syncs: the CRM's (see :func:`crm_jobs`), the
        nightly recommendation write-back on ``[recommend] write_back``, and each shop's
        check for due campaigns."""
        jobs: list[CronJob | IntervalJob] = [*crm_jobs(self.config, self.nightly)]
        cron = self.config.recommend.write_back
        if cron:
            jobs.append(
                CronJob(WRITE_BACK_JOB, "recommendation write-back", cron, self.write_back_all)
            )
        return [*jobs, *self.campaign_jobs()]

    def _after_sync(self, result: SyncResult) -> None:
        self.refresh(self.store.shop_of(result.connection))

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
