"""Settings of the email dispatcher: the SMTP server, the sender, unsubscribing, DKIM."""

from __future__ import annotations

import ipaddress
import re
import urllib.parse
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from omnicrm import TimeZoneName, is_loopback

TlsMode = Literal["none", "starttls", "implicit"]
DEFAULT_PORTS: dict[str, int] = {"none": 25, "starttls": 587, "implicit": 465}


# A local part of RFC 5322's atom characters, dots anywhere: Japanese mobile carriers
# long handed out addresses such as "taro..hanako.@docomo.ne.jp", which their servers
# still take, so a stricter dot-atom would refuse real customers. A domain of labels.
_ADDRESS = re.compile(
    r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}"
)


def parse_address(value: str) -> str:
    """``value`` as a bare email address (``local@domain``); ValueError if it is not one."""
    text = value.strip()
    if not text.isascii():
        # SMTPUTF8 is rare among Japanese mail servers; full-width characters in an
        # address are a typing slip the identity module normalises, not an address.
        raise ValueError(f"{value!r} has characters outside ASCII")
    if len(text) > 254 or not _ADDRESS.fullmatch(text):
        raise ValueError(f"{value!r} is not an email address (local@domain.tld)")
    return text


class EmailSettings(BaseModel):
    """How to send a shop's email, and who it says it is from (特定電子メール法)."""

    model_config = ConfigDict(extra="forbid")

    host: str = Field(description="The SMTP server (the shop's relay or provider).")
    port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="Default by tls: 25 (none), 587 (starttls), 465 (implicit).",
    )
    tls: TlsMode = Field(
        default="starttls",
        description="none, starttls (upgrade after connecting) or implicit (TLS from the start).",
    )
    ca_file: Path | None = Field(
        default=None,
        description="A CA bundle to trust besides the system's (a relay's own certificate).",
    )
    username: str | None = Field(default=None, description="SMTP AUTH user name.")
    password: SecretStr | None = Field(
        default=None,
        description='SMTP AUTH password: write  password = { env = "NAME" }.',
    )
    timeout: float = Field(default=30.0, gt=0, le=600, description="Seconds per SMTP command.")
    messages_per_connection: int = Field(
        default=100,
        ge=1,
        le=100_000,
        description="Messages sent over one connection before it is renewed (many "
        "providers cap a session).",
    )
    sender_name: str = Field(description="The shop's name, shown in From and the footer.")
    sender_address: str = Field(description="The From address.")
    postal_address: str = Field(
        description="The sender's postal address, in every message's footer (特定電子メール法)."
    )
    opt_out_contact: str = Field(
        description="Where a recipient asks to stop receiving mail (an address, phone or "
        "URL), in every message's footer (特定電子メール法)."
    )
    unsubscribe_url: str = Field(
        description="The https page of one-click unsubscribing; each message's token is "
        "added as ?token=... (List-Unsubscribe, RFC 8058)."
    )
    unsubscribe_mailto: str = Field(
        description="The address a reply-to-unsubscribe goes to (List-Unsubscribe)."
    )
    reply_to: str | None = Field(default=None, description="Reply-To, when not the sender.")
    timezone: TimeZoneName = Field(
        default="Asia/Tokyo", description="The zone of each Date header."
    )
    dkim_selector: str | None = Field(default=None, description="DKIM selector (s=).")
    dkim_domain: str | None = Field(default=None, description="DKIM signing domain (d=).")
    dkim_private_key_path: Path | None = Field(
        default=None, description="The PEM file of the DKIM private key (RSA or Ed25519)."
    )

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        value = value.strip()
        bad = not value or any(c.isspace() or c in "/:@" for c in value.strip("[]"))
        if bad and not _is_ipv6(value):
            raise ValueError("must be a host name or an IP address, without a port")
        return value

    @field_validator("sender_address", "unsubscribe_mailto", "reply_to")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        return None if value is None else parse_address(value)

    @field_validator("sender_name", "postal_address", "opt_out_contact")
    @classmethod
    def _filled(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("must not be empty: every message shows it (特定電子メール法)")
        return value.replace("\r\n", "\n").replace("\r", "\n")

    @field_validator("unsubscribe_url")
    @classmethod
    def _https(cls, value: str) -> str:
        parts = urllib.parse.urlsplit(value.strip())
        if parts.scheme != "https" or not parts.hostname:
            raise ValueError("must be an https URL (RFC 8058 one-click needs https)")
        if parts.fragment:
            raise ValueError("must not have a #fragment")
        return value.strip()

    @field_validator("dkim_private_key_path")
    @classmethod
    def _key_file(cls, value: Path | None) -> Path | None:
        if value is None:
            return None
        try:
            head = value.read_bytes()[:4096]
        except OSError as exc:
            raise ValueError(f"cannot read {value}: {exc.strerror or exc}") from None
        if b"-----BEGIN" not in head or b"PRIVATE KEY-----" not in head:
            raise ValueError(f"{value} is not a PEM private key")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> EmailSettings:
        if (self.username is None) != (self.password is None):
            raise ValueError("give username and password together, or neither")
        if self.password is not None and self.tls == "none" and not is_loopback(self.host):
            raise ValueError(
                f"tls = 'none' would send the password in clear to {self.host}: "
                "use 'starttls' or 'implicit'"
            )
        dkim = (self.dkim_selector, self.dkim_domain, self.dkim_private_key_path)
        if any(v is not None for v in dkim) and any(v is None for v in dkim):
            raise ValueError(
                "give dkim_selector, dkim_domain and dkim_private_key_path together, or none"
            )
        return self

    @property
    def smtp_port(self) -> int:
        """The port to connect to: the one given, else the TLS mode's usual one."""
        return self.port if self.port is not None else DEFAULT_PORTS[self.tls]

    @property
    def sender_domain(self) -> str:
        return self.sender_address.rpartition("@")[2]

    @property
    def dkim(self) -> bool:
        """Whether messages are DKIM-signed."""
        return self.dkim_private_key_path is not None


def _is_ipv6(value: str) -> bool:
    try:
        return ipaddress.ip_address(value.strip("[]")).version == 6
    except ValueError:
        return False
