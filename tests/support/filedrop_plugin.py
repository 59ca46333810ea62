"""A dispatcher that delivers into a local file: one JSON line per message, on disk
(flushed and fsynced) before it answers ``sent``, as a mail server's queue would be.

The tests read the file back as what arrived. Addresses at ``reject_domain`` are
refused (``rejected``), as a server refuses an unknown mailbox; ``delay`` seconds per
message give a crash test time to land between the hand-over and the answer.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel

import omnicrm
from omnicrm import DeliveryStatus, Dispatcher, DispatchOutcome, Medium, Message


class FiledropSettings(BaseModel):
    path: Path
    reject_domain: str | None = None
    delay: float = 0.0


@omnicrm.hookimpl
def omnicrm_register(register: omnicrm.Registrar) -> None:
    register.dispatcher(Dispatcher("filedrop", Medium.EMAIL, FiledropSettings, "a local file"))


@omnicrm.hookimpl
def omnicrm_dispatch_message(message: Message, settings: BaseModel) -> DispatchOutcome:
    assert isinstance(settings, FiledropSettings)
    if settings.reject_domain and message.to.endswith("@" + settings.reject_domain):
        return DispatchOutcome(DeliveryStatus.REJECTED, error="550 no such mailbox")
    if settings.delay:
        time.sleep(settings.delay)
    line = json.dumps(
        {
            "id": message.id,
            "to": message.to,
            "subject": message.subject,
            "body": message.body,
            "html": message.html,
            "metadata": message.metadata,
        },
        ensure_ascii=False,
    )
    with settings.path.open("a", encoding="utf-8") as out:
        out.write(line + "\n")
        out.flush()
        os.fsync(out.fileno())
    return DispatchOutcome(DeliveryStatus.SENT, provider_id=f"drop-{message.id}")


def arrived(path: Path) -> list[dict[str, Any]]:
    """What the file holds, one dict per message, in arrival order. A line still being
    written by a sender in another process (read before its newline) is not counted."""
    if not path.exists():
        return []
    data = path.read_bytes()  # a half-written line may end inside a character
    whole = data[: data.rfind(b"\n") + 1].decode("utf-8")
    return [json.loads(line) for line in whole.splitlines() if line]
