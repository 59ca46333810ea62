"""The receiver contract's two forms of ``actions``: read once, each called as written."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pytest
from pydantic import BaseModel

from omnicrm import ChannelType, Connection, Stream
from omnicrm.core.host import Registrar
from omnicrm.core.webhooks import Action, Delete, WebhookEvent, check_receiver, event_actions
from omnicrm.errors import PluginError


class Settings(BaseModel):
    region: str = "tokyo"


CONNECTION = Connection("store", "hooked", Settings())
EVENT = WebhookEvent("store", "e1", "customers/delete", {"id": "c1"})


class Verifies:
    def verify(
        self, headers: Mapping[str, str], body: bytes, connections: Sequence[Connection]
    ) -> WebhookEvent:
        return EVENT


class Current(Verifies):
    def actions(self, event: WebhookEvent, connection: Connection) -> Iterable[Action]:
        assert isinstance(connection.settings, Settings)
        yield Delete("customers", [f"{connection.settings.region}:{event.payload['id']}"])


class EventOnly(Verifies):
    """Written before the connection was passed."""

    def actions(self, event: WebhookEvent) -> Iterable[Action]:
        yield Delete("customers", [event.payload["id"]])


class OwnOptional(Verifies):
    """An optional second parameter of its own: not the connection."""

    def actions(self, event: WebhookEvent, strict: bool = True) -> Iterable[Action]:
        assert strict is True
        yield Delete("customers", [event.payload["id"]])


class Starred(Verifies):
    def actions(self, *args: Any) -> Iterable[Action]:
        yield Delete("customers", [str(len(args))])


class NoEvent(Verifies):
    def actions(self) -> Iterable[Action]:
        return ()


class TooMany(Verifies):
    def actions(self, event: WebhookEvent, connection: Connection, more: int) -> Iterable[Action]:
        return ()


@pytest.mark.parametrize(
    ("receiver", "ids"),
    [
        (Current(), ["tokyo:c1"]),
        (EventOnly(), ["c1"]),
        (OwnOptional(), ["c1"]),
        (Starred(), ["2"]),
    ],
)
def test_each_form_is_called_as_written(receiver: object, ids: list[str]) -> None:
    check_receiver(receiver)
    assert event_actions(receiver, EVENT, CONNECTION) == [Delete("customers", ids)]  # type: ignore[arg-type]


@pytest.mark.parametrize("receiver", [NoEvent(), TooMany(), object()])
def test_a_receiver_of_neither_form_is_refused_at_registration(receiver: object) -> None:
    accepted: list[str] = []
    register = Registrar(lambda kind, name, obj, hooks: accepted.append(name))
    with pytest.raises(PluginError, match="webhook receiver"):
        register.channel_type(
            ChannelType("hooked", Settings, streams=(Stream.CUSTOMERS,), webhooks=receiver)  # type: ignore[arg-type]
        )
    assert accepted == []
    register.channel_type(
        ChannelType("hooked", Settings, streams=(Stream.CUSTOMERS,), webhooks=Current())
    )
    assert accepted == ["hooked"]
