"""The conformance suite for dispatcher plugins (see ``omnicrm.testing``)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

import pytest
from pydantic import BaseModel, SecretStr, ValidationError

from omnicrm.core._public import public
from omnicrm.core.dispatch import (
    DeliveryStatus,
    Dispatcher,
    DispatchOutcome,
    Message,
    MessageParts,
)
from omnicrm.core.host import Host
from omnicrm.core.records import Consent, ConsentState
from omnicrm.errors import TemplateError


class DispatcherConformance:
    """Subclass in a test module and set ``dispatcher`` and ``recipient`` to run the suite.

    ``recipient`` is an address in the medium the sandbox accepts; ``refused_recipient``
    and ``deferred_recipient``, when set, are ones it refuses for good and for now (their
    checks are skipped otherwise). Override the fixtures ``settings`` (default: the
    dispatcher's own sandbox), ``invalid_settings`` (settings its model must refuse) and
    ``unreachable_settings`` (valid settings whose server does not answer) where the
    defaults do not fit, and :meth:`message_metadata` where the dispatcher reads more of
    a recipient than ``to`` (a postal label's name and address).
    """

    dispatcher: ClassVar[str]
    recipient: ClassVar[str]
    plugin: ClassVar[object | None] = None
    refused_recipient: ClassVar[str | None] = None
    deferred_recipient: ClassVar[str | None] = None
    template: ClassVar[MessageParts] = MessageParts(
        subject="{{ name }}様へのお知らせ", body="{{ name }}様\nポイント残高: {{ points }}"
    )
    fields: ClassVar[Mapping[str, Any]] = {"name": "山田 花子", "points": 1200}

    @pytest.fixture
    def host(self) -> Host:
        if self.plugin is None:
            host = Host.load()
        else:
            extra = {f"{self.dispatcher}-plugin": self.plugin}
            host = Host.load(use_entry_points=False, extra=extra)
        assert not host.failures, f"plugins failed to load: {host.failures}"
        return host

    @pytest.fixture
    def spec(self, host: Host) -> Dispatcher:
        assert self.dispatcher in host.dispatchers, (
            f"no dispatcher {self.dispatcher!r} registered (have: {sorted(host.dispatchers)})"
        )
        return host.dispatchers[self.dispatcher]

    @pytest.fixture
    def settings(self, spec: Dispatcher) -> Iterator[Mapping[str, Any]]:
        if spec.sandbox is None:
            pytest.skip(f"{self.dispatcher} has no sandbox: override the `settings` fixture")
        with spec.sandbox() as settings:
            yield settings

    @pytest.fixture
    def invalid_settings(self, spec: Dispatcher) -> Mapping[str, Any]:
        if not any(f.is_required() for f in spec.settings.model_fields.values()):
            pytest.skip("every setting has a default: override `invalid_settings`")
        return {}

    @pytest.fixture
    def unreachable_settings(self) -> Mapping[str, Any]:
        pytest.skip("override `unreachable_settings` with settings whose server is down")

    def message_metadata(self, to: str) -> dict[str, Any]:
        """The ``metadata`` of the kit's message to ``to``: what a campaign's sender
        gives (see :class:`~omnicrm.Message`); override to give a recipient more."""
        return {
            "shop": "conformance",
            "campaign": "conformance",
            "variant": "A",
            "family_name": "山田",
            "given_name": "花子",
        }

    def message(self, spec: Dispatcher, to: str, parts: MessageParts | None = None) -> Message:
        """A message to ``to``, rendered from ``template`` when the dispatcher renders."""
        if parts is None:
            if spec.renderer is not None:
                parts = spec.renderer.render(self.template, self.fields)
            else:
                parts = MessageParts(body="ポイント残高: 1200", subject="お知らせ")
        return Message(
            id=f"conformance-{uuid.uuid4().hex}",
            medium=spec.medium,
            customer_id="conformance-1",
            to=to,
            body=parts.body,
            subject=parts.subject,
            html=parts.html,
            metadata=self.message_metadata(to),
        )

    def _dispatch(
        self, host: Host, spec: Dispatcher, message: Message, settings: BaseModel
    ) -> DispatchOutcome:
        consent = Consent(medium=spec.medium, state=ConsentState.OPTED_IN)
        outcome = host.dispatch(self.dispatcher, message, settings, consents=[consent])
        assert isinstance(outcome, DispatchOutcome)
        return outcome

    # -- the checks

    def test_registered(self, spec: Dispatcher) -> None:
        assert issubclass(spec.settings, BaseModel)
        assert spec.name == self.dispatcher

    def test_sends(self, host: Host, spec: Dispatcher, settings: Mapping[str, Any]) -> None:
        model = spec.settings.model_validate(dict(settings))
        outcome = self._dispatch(host, spec, self.message(spec, self.recipient), model)
        assert outcome.status is DeliveryStatus.SENT, outcome.error
        assert outcome.provider_id, "a sent message needs the provider's id"

    def test_no_consent_no_call(
        self, host: Host, spec: Dispatcher, settings: Mapping[str, Any]
    ) -> None:
        model = spec.settings.model_validate(dict(settings))
        message = self.message(spec, self.recipient)
        outcome = host.dispatch(self.dispatcher, message, model, consents=[])
        assert outcome.status is DeliveryStatus.REJECTED

    def test_refused_recipient_is_rejected(
        self, host: Host, spec: Dispatcher, settings: Mapping[str, Any]
    ) -> None:
        if self.refused_recipient is None:
            pytest.skip("set `refused_recipient` to an address the sandbox refuses for good")
        model = spec.settings.model_validate(dict(settings))
        outcome = self._dispatch(host, spec, self.message(spec, self.refused_recipient), model)
        assert outcome.status is DeliveryStatus.REJECTED
        assert outcome.error, "a rejection says why"

    def test_deferred_recipient_failed(
        self, host: Host, spec: Dispatcher, settings: Mapping[str, Any]
    ) -> None:
        if self.deferred_recipient is None:
            pytest.skip("set `deferred_recipient` to an address the sandbox defers")
        model = spec.settings.model_validate(dict(settings))
        outcome = self._dispatch(host, spec, self.message(spec, self.deferred_recipient), model)
        assert outcome.status is DeliveryStatus.FAILED
        assert outcome.error, "a failure says why"

    def test_unreachable_is_an_outcome(
        self, host: Host, spec: Dispatcher, unreachable_settings: Mapping[str, Any]
    ) -> None:
        model = spec.settings.model_validate(dict(unreachable_settings))
        outcome = self._dispatch(host, spec, self.message(spec, self.recipient), model)
        assert outcome.status is DeliveryStatus.FAILED, "a server that is down may be retried"

    def test_invalid_settings_name_the_field(
        self, spec: Dispatcher, invalid_settings: Mapping[str, Any]
    ) -> None:
        with pytest.raises(ValidationError) as caught:
            spec.settings.model_validate(dict(invalid_settings))
        for error in caught.value.errors():
            assert error["loc"] or error["msg"], f"an error names no field: {error}"
        required = {n for n, f in spec.settings.model_fields.items() if f.is_required()}
        missing = required - set(invalid_settings)
        named = {str(e["loc"][0]) for e in caught.value.errors() if e["loc"]}
        assert missing <= named, f"required settings not named: {sorted(missing - named)}"

    def test_secrets_stay_hidden(
        self,
        host: Host,
        spec: Dispatcher,
        settings: Mapping[str, Any],
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        secret_fields = [
            name
            for name, info in spec.settings.model_fields.items()
            if "SecretStr" in str(info.annotation)
        ]
        if not secret_fields:
            pytest.skip("the settings have no secret (pydantic.SecretStr) field")
        model = spec.settings.model_validate(dict(settings))
        planted = {name: f"conformance-secret-{uuid.uuid4().hex}" for name in secret_fields}
        # The planted secrets are wrong: the server may refuse them, which must be an
        # outcome that does not repeat them either.
        model = model.model_copy(update={n: SecretStr(v) for n, v in planted.items()})
        caplog.set_level(logging.DEBUG)
        outcome = self._dispatch(host, spec, self.message(spec, self.recipient), model)
        shown = "\n".join(
            [repr(model), str(model), model.model_dump_json(), repr(outcome), caplog.text]
        )
        for name, secret in planted.items():
            assert secret not in shown, f"the secret setting {name!r} was shown"

    def test_templates_are_strict(self, spec: Dispatcher) -> None:
        if spec.renderer is None:
            pytest.skip(f"{self.dispatcher} renders no templates")
        spec.renderer.check(self.template, list(self.fields))
        unknown = MessageParts(
            subject=self.template.subject, body=self.template.body + "{{ no_such_field }}"
        )
        with pytest.raises(TemplateError) as caught:
            spec.renderer.check(unknown, list(self.fields))
        assert "no_such_field" in caught.value.names
        with pytest.raises(TemplateError) as caught:
            spec.renderer.render(unknown, self.fields)
        assert "no_such_field" in str(caught.value)
        rendered = spec.renderer.render(self.template, self.fields)
        assert isinstance(rendered, MessageParts)
        for value in self.fields.values():
            assert str(value) in rendered.body


public(DispatcherConformance, module="omnicrm.testing")
