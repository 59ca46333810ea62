"""Everything a command needs, wired once: plugins, config, store and sync engine."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from omnicrm.app.config import Config, SchedulerSection, default_store_url, load_config
from omnicrm.core.host import Host
from omnicrm.core.scheduler import CronJob
from omnicrm.core.store import Store
from omnicrm.core.sync import SyncEngine, SyncResult
from omnicrm.errors import ConfigError

log = logging.getLogger("omnicrm")

NIGHTLY_JOB = "crm:nightly"

if TYPE_CHECKING:
    from omnicrm.crm.refresh import RefreshResult


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

    @classmethod
    def load(cls, config_path: Path | None, *, host: Host | None = None) -> Runtime:
        """Load plugins, then the config at ``config_path`` (None: no file, defaults)."""
        host = host or Host.load()
        if config_path is None:
            config = Config(path=None, store_url=default_store_url(), scheduler=SchedulerSection())
        else:
            settings = {name: ct.settings for name, ct in host.channel_types.items()}
            config = load_config(config_path, settings)
        return cls(host, config)

    @property
    def store(self) -> Store:
        """The store, opened (and migrated) on first use."""
        if self._store is None:
            try:
                self._store = Store.open(self.config.store_url)
            except ConfigError as exc:
                raise ConfigError(exc.reason, file=self.config.path, key=exc.key) from None
        return self._store

    def engine(self) -> SyncEngine:
        """The sync engine; each run ends with a CRM refresh unless the config says not to."""
        after = self._after_sync if self.config.crm.refresh_after_sync else None
        return SyncEngine(self.host, self.store, after_run=after)

    def refresh(self, *, full: bool = False, rebuild: bool = False) -> RefreshResult:
        """Bring profiles, scores and segment counts up to date (see omnicrm.crm.refresh)."""
        # Imported here: the CRM pulls in numpy and scipy, which most commands never need.
        from omnicrm.crm.refresh import CrmSettings, refresh

        config = self.config
        settings = CrmSettings(
            identity=config.identity,
            points=config.points,
            analytics=config.analytics,
            crm=config.crm,
            timezone=config.scheduler.timezone,
        )
        return refresh(self.store, settings, full=full, rebuild=rebuild)

    def nightly(self) -> None:
        """The nightly job: a full refresh (CLV fit, point expiry), then reconciliation."""
        import datetime as dt

        from omnicrm.crm.points import run_reconciliation

        self.refresh(full=True)
        found = run_reconciliation(self.store, self.config.points, dt.datetime.now(dt.UTC))
        if found.differences:
            log.warning("points: %d balance(s) differ from the platform's", len(found.differences))

    def jobs(self) -> list[CronJob]:
        """The scheduled jobs beside the syncs (see :func:`crm_jobs`)."""
        return crm_jobs(self.config, self.nightly)

    def _after_sync(self, _result: SyncResult) -> None:
        self.refresh()

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
