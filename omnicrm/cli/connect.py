"""``omnicrm connect``: authorise an OAuth connection once, or show which are authorised.

Exit codes: 0 done; 1 the platform refused or could not be reached; 2 bad usage or
configuration. Tokens go to the connection's token file (mode 0600, outside
omnicrm.toml) and are never printed.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import click
from rich.markup import escape

from omnicrm.cli._common import Context, console, errors, fail

if TYPE_CHECKING:
    from omnicrm.app.config import Config

CHANNELS = ("ec_cube",)
"""The channel types authorised this way (OAuth2 authorization code)."""


def _connections(config: Config, name: str | None) -> list[str]:
    names = sorted(n for n, c in config.connections.items() if c.channel in CHANNELS)
    if name is None:
        return names
    if name in config.invalid:
        fail(f"connection {name!r} has invalid settings: {config.invalid[name]}", 2)
    if name not in config.connections:
        fail(f"no connection {name!r} in the config", 2)
    if name not in names:
        fail(
            f"connection {name!r} ({config.connections[name].channel}) is not authorised "
            f"this way: only {', '.join(CHANNELS)} connections are",
            2,
        )
    return [name]


def _local(value: dt.datetime) -> str:
    return value.astimezone().strftime("%Y-%m-%d %H:%M %Z")


def _status(config: Config, names: list[str]) -> None:
    from omnicrm.errors import ConfigError
    from omnicrm.plugins.ec_cube.api.tokens import TokenStore, token_file

    if not names:
        console.print("no connection is authorised with `omnicrm connect`")
        return
    now = dt.datetime.now(dt.UTC)
    for name in names:
        settings = config.connections[name].settings
        path = token_file(settings, name)  # type: ignore[arg-type]
        try:
            tokens = TokenStore(path).load()
        except ConfigError as exc:
            console.print(f"{escape(name)}: [red]unreadable tokens[/] ({escape(str(exc))})")
            continue
        if tokens is None:
            console.print(
                f"{escape(name)}: [yellow]not authorised[/]: run `omnicrm connect {escape(name)}`"
            )
        elif tokens.refresh_expires_at <= now:
            console.print(
                f"{escape(name)}: [red]expired[/] {_local(tokens.refresh_expires_at)}: run "
                f"`omnicrm connect {escape(name)}`"
            )
        else:
            console.print(
                f"{escape(name)}: [green]authorised[/] until {_local(tokens.refresh_expires_at)} "
                "(renewed on each use; access token valid until "
                f"{_local(tokens.access_expires_at)})"
            )


@click.command("connect")
@click.argument("connection", required=False)
@click.option("--status", "show_status", is_flag=True, help="Show whether each is authorised.")
@click.option(
    "--listen",
    is_flag=True,
    help="Catch the browser's redirect on the loopback redirect_uri instead of typing the code.",
)
@click.option(
    "--timeout", type=float, default=300.0, show_default=True, help="Seconds --listen waits."
)
@click.pass_obj
def connect(
    obj: Context, connection: str | None, show_status: bool, listen: bool, timeout: float
) -> None:
    """Authorise an EC-CUBE connection once (OAuth2), or show which are authorised."""
    with errors():
        config = obj.runtime().config
    names = _connections(config, connection)
    if show_status:
        _status(config, names)
        return
    if connection is None:
        fail("name the connection to authorise, or pass --status", 2)

    import httpx

    from omnicrm.plugins.ec_cube.api.authorise import catch_redirect, code_from
    from omnicrm.plugins.ec_cube.api.settings import EccubeSettings
    from omnicrm.plugins.ec_cube.api.tokens import (
        TokenStore,
        authorize_url,
        exchange_code,
        new_state,
        token_file,
    )

    settings = config.connections[connection].settings
    assert isinstance(settings, EccubeSettings)
    state = new_state()
    console.print(
        "Open this address in a browser, log in to the shop's admin and approve:",
        highlight=False,
    )
    click.echo(authorize_url(settings, state))
    with errors():
        if listen:
            console.print(f"waiting for the redirect to {escape(settings.redirect_uri)} ...")
            code = catch_redirect(settings.redirect_uri, state, timeout)
        else:
            typed = click.prompt(
                "Paste the code (or the whole address the browser landed on)", hide_input=True
            )
            code = code_from(typed, state)
        path = token_file(settings, connection)
        with httpx.Client() as http:
            tokens = exchange_code(http, settings, code)
        store = TokenStore(path)
        with store.locked():
            store.save(tokens)
    console.print(
        f"{escape(connection)}: authorised until {_local(tokens.refresh_expires_at)}; "
        f"tokens kept in {escape(str(path))}"
    )
