"""``omnicrm tui``: the terminal UI, or (``--serve``) the same UI in a browser.

Exit codes: 0 closed; 2 bad configuration.
"""

from __future__ import annotations

import shlex
import sys

import click

from omnicrm.cli._common import Context, console, errors, fail


@click.command("tui")
@click.option("--serve", is_flag=True, help="Serve the UI in a browser (textual-serve).")
@click.option("--host", default="localhost", show_default=True, help="Address to serve on.")
@click.option("--port", default=8000, show_default=True, type=int, help="Port to serve on.")
@click.option(
    "--shop",
    default=None,
    metavar="ID",
    help="The shop whose segments and customers are shown first (default: the first by "
    "id); the UI's shop switcher picks another.",
)
@click.pass_obj
def tui_command(obj: Context, serve: bool, host: str, port: int, shop: str | None) -> None:
    """Watch every connection's syncs live; sync, resync, pause and resume them."""
    with errors():
        runtime = obj.runtime(need_config=False)
        if shop is not None:
            runtime.shop(shop)  # a shop not configured: exit 2 naming the shops
    if serve:
        _serve(obj, host, port, shop)
        return
    # Imported here: Textual takes a moment to import and no other command needs it.
    from omnicrm.tui.app import OmnicrmApp

    try:
        OmnicrmApp(runtime, shop=shop).run()
    finally:
        runtime.close()


def _serve(obj: Context, host: str, port: int, shop: str | None) -> None:
    from textual_serve.server import Server

    # Each browser session runs its own `omnicrm tui`, with the same config file.
    argv = [sys.executable, "-m", "omnicrm.cli"]
    config = obj.config_file()
    if config.exists():
        argv += ["--config", str(config.resolve())]
    elif obj.config_path is not None:
        fail(f"config file {obj.config_path} not found", 2)
    command = [*argv, "tui"] + (["--shop", shop] if shop is not None else [])
    server = Server(shlex.join(command), host=host, port=port, title="omnicrm")
    console.print(f"omnicrm tui served at {server.public_url} (Ctrl-C to stop)", highlight=False)
    server.serve()
