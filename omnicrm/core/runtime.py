"""Everything a command needs, wired once: plugins, config, store and sync engine."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from omnicrm.core.config import Config, SchedulerSection, default_store_url, load_config
from omnicrm.core.host import Host
from omnicrm.core.store import Store
from omnicrm.core.sync import SyncEngine
from omnicrm.errors import ConfigError


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
        return SyncEngine(self.host, self.store)

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
