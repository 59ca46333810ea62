"""What every command shares: the consoles, error exits and the config context."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import click
from rich.console import Console
from rich.markup import escape

from omnicrm.errors import ConfigError, OmnicrmError, StoreError

if TYPE_CHECKING:  # imported when a command runs: `--help` must not load the store
    from omnicrm.app.runtime import Runtime

console = Console()
err_console = Console(stderr=True)


def fail(message: str, code: int) -> NoReturn:
    """Print ``message`` as an error and exit with ``code``."""
    # One line however long: a wrapped line reads as several errors in a log.
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    sys.exit(code)


@contextlib.contextmanager
def errors() -> Iterator[None]:
    """Turn omnicrm's errors into a clear message and the documented exit code."""
    try:
        yield
    except ConfigError as exc:
        fail(str(exc), 2)
    except StoreError as exc:
        fail(str(exc), 2 if exc.opening else 1)
    except OmnicrmError as exc:
        fail(str(exc), 1)


# Every command that reads or changes customer data works in one shop: its customers,
# segments, points and reports never mix with another shop's.
shop_option = click.option(
    "--shop",
    "shop",
    default=None,
    metavar="ID",
    help="The shop (client business) to work in; may be left out when only one is configured.",
)


class Context:
    """The root group's options, handed to every command as ``obj``."""

    def __init__(self, config: Path | None) -> None:
        self.config_path = config
        self.loaded: Runtime | None = None  # the last runtime loaded, to name its store

    def runtime(self, *, need_config: bool = True) -> Runtime:
        """The host, config and store; ``need_config=False`` runs without a config file."""
        from omnicrm.app.runtime import Runtime

        path = self.config_file()
        if not need_config and self.config_path is None and not path.exists():
            self.loaded = Runtime.load(None)
        else:
            self.loaded = Runtime.load(path)
        for warning in self.loaded.config.warnings:
            err_console.print(f"warning: {escape(warning)}", highlight=False, soft_wrap=True)
        from omnicrm.core.heap import settle_heap

        settle_heap()  # what is loaded now lives as long as the command
        return self.loaded

    def config_file(self) -> Path:
        """The config to read; says so on stderr when it is the user config (the demo's)."""
        from omnicrm.app.config import config_to_read, user_config

        path = config_to_read(self.config_path)
        if path == user_config():
            err_console.print(
                f"[dim]config: {escape(str(path))} (no ./omnicrm.toml here)[/]",
                highlight=False,
                soft_wrap=True,
            )
        return path
