"""What the plugin sends LINE and what the emulator answers (and posts as webhooks)
validate against LINE's own OpenAPI documents (messaging-api.yml, webhook.yml).

The documents name message and event types by a ``discriminator``, which the validator
does not follow: each message object and event is checked against its mapped schema too.
"""

from __future__ import annotations

import uuid
from functools import cache
from typing import Any

import httpx
import pytest
import yaml
from jsonschema.exceptions import ValidationError
from openapi_schema_validator import OAS30ReadValidator, OAS30WriteValidator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from omnicrm import Medium, Message
from omnicrm.plugins.line import plugin
from omnicrm.plugins.line.client import Client, text_message
from omnicrm.plugins.line.sandbox import DEMO_FRIENDS, LineEmulator, demo_user
from omnicrm.plugins.line.settings import LineSettings
from tests.support.reference import REFERENCE, require

API = "urn:line:messaging-api"
WEBHOOK = "urn:line:webhook"


@cache
def document(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(
        require(REFERENCE / "line" / name).read_text(encoding="utf-8")
    )
    return loaded


@cache
def registry() -> Registry:  # type: ignore[type-arg]
    return Registry().with_resources(
        [
            (API, Resource.from_contents(document("messaging-api.yml"), DRAFT4)),
            (WEBHOOK, Resource.from_contents(document("webhook.yml"), DRAFT4)),
        ]
    )


def check(base: str, schema: str, instance: Any, *, request: bool) -> None:
    """Validate ``instance`` against components/schemas/``schema`` of ``base``, and each
    message object or event against the schema its type maps to."""
    kind = OAS30WriteValidator if request else OAS30ReadValidator
    ref = {"$ref": f"{base}#/components/schemas/{schema}"}
    kind(ref, registry=registry()).validate(instance)
    spec = document("messaging-api.yml" if base == API else "webhook.yml")
    schemas = spec["components"]["schemas"]
    for field, parent in (("messages", "Message"), ("events", "Event")):
        if isinstance(instance, dict) and field in instance:
            mapping = schemas[parent]["discriminator"]["mapping"]
            for item in instance[field]:
                mapped = mapping[item["type"]].rsplit("/", 1)[1]
                kind(
                    {"$ref": f"{base}#/components/schemas/{mapped}"}, registry=registry()
                ).validate(item)


def operation(method: str, path: str) -> dict[str, Any]:
    found: dict[str, Any] = document("messaging-api.yml")["paths"][path][method.lower()]
    return found


def response_schema(method: str, path: str, status: int) -> str:
    answer = operation(method, path)["responses"][str(status)]
    ref: str = answer["content"]["application/json"]["schema"]["$ref"]
    return ref.rsplit("/", 1)[1]


def request_schema(method: str, path: str) -> str:
    ref: str = operation(method, path)["requestBody"]["content"]["application/json"]["schema"][
        "$ref"
    ]
    return ref.rsplit("/", 1)[1]


def test_the_validator_catches_what_is_wrong() -> None:
    good = {"to": demo_user(0, 0), "messages": [text_message("こんにちは")]}
    check(API, "PushMessageRequest", good, request=True)
    with pytest.raises(ValidationError):
        check(API, "PushMessageRequest", {"to": demo_user(0, 0)}, request=True)
    with pytest.raises(ValidationError):  # the text message's text is required
        check(API, "PushMessageRequest", {**good, "messages": [{"type": "text"}]}, request=True)
    with pytest.raises(ValidationError):
        check(
            API, "MulticastRequest", {"to": ["U"] * 501, "messages": good["messages"]}, request=True
        )
    with pytest.raises(ValidationError):
        check(WEBHOOK, "CallbackRequest", {"destination": "U1", "events": []}, request=False)


def test_every_exchange_validates(emulator: LineEmulator, settings: LineSettings) -> None:
    button = settings.model_copy(
        update={"button_label": "会場へ", "button_url": "https://tokyo-tea.example.jp/sale"}
    )
    message = Message(id="s.c1.p1.line", medium=Medium.LINE, customer_id="1",
                      to=demo_user(0, 0), body="ご案内です")  # fmt: skip
    plugin.omnicrm_dispatch_message(message, button)  # 200
    plugin.omnicrm_dispatch_message(message, button)  # 409: the retry key again
    blocked = Message(id="b", medium=Medium.LINE, customer_id="2",
                      to=demo_user(0, DEMO_FRIENDS), body="x")  # fmt: skip
    plugin.omnicrm_dispatch_message(blocked, settings)  # 400
    client = Client(settings)
    try:
        client.multicast([demo_user(0, n) for n in range(3)], [text_message("x")], message_id="m")
        client.link_token(demo_user(0, 1))
    finally:
        client.close()
    seen = set()
    for exchange in emulator.exchanges:
        where = f"{exchange.method} {exchange.path} ({exchange.status})"
        if exchange.request is not None:
            try:
                check(API, request_schema(exchange.method, exchange.path), exchange.request,
                      request=True)  # fmt: skip
            except ValidationError as exc:
                pytest.fail(f"the plugin sent {where} a body outside the spec: {exc.message}")
        if "x-line-retry-key" in exchange.headers:
            uuid.UUID(exchange.headers["x-line-retry-key"])
        try:
            check(API, response_schema(exchange.method, exchange.path, exchange.status),
                  exchange.response, request=False)  # fmt: skip
        except ValidationError as exc:
            pytest.fail(f"the emulator answered {where} outside the spec: {exc.message}")
        seen.add((exchange.path, exchange.status))
    assert seen == {
        ("/v2/bot/message/push", 200),
        ("/v2/bot/message/push", 409),
        ("/v2/bot/message/push", 400),
        ("/v2/bot/message/multicast", 200),
        ("/v2/bot/user/{userId}/linkToken", 200),
    }


@pytest.mark.parametrize("fault", [429, 500])
def test_fault_answers_are_line_error_responses(emulator: LineEmulator, fault: int) -> None:
    if fault == 429:
        emulator.rate_limit_next()
    else:
        emulator.fail_next(status=500)
    answer = httpx.post(
        f"{emulator.url}/v2/bot/message/push",
        json={"to": demo_user(0, 0), "messages": [text_message("x")]},
        headers={"Authorization": f"Bearer {emulator.channel_access_token}"},
    )
    assert answer.status_code == fault
    check(API, "ErrorResponse", answer.json(), request=False)


def test_a_wrong_token_is_a_line_error_response(emulator: LineEmulator) -> None:
    answer = httpx.post(
        f"{emulator.url}/v2/bot/message/push",
        json={"to": demo_user(0, 0), "messages": [text_message("x")]},
        headers={"Authorization": "Bearer nope"},
    )
    assert answer.status_code == 401
    check(API, "ErrorResponse", answer.json(), request=False)


def test_the_webhooks_the_emulator_posts_validate(emulator: LineEmulator) -> None:
    user = demo_user(0, 4)
    emulator.follow(user)
    emulator.unfollow(user)
    emulator.post_webhook(
        emulator.event("accountLink", user, replyToken="r", link={"result": "ok", "nonce": "n1"})
    )
    emulator.post_webhook()  # the console's "Verify": no events
    assert len(emulator.webhooks_posted) == 4
    for body in emulator.webhooks_posted:
        check(WEBHOOK, "CallbackRequest", body, request=False)
