"""The MIME message of a notification (SPEC 2.6 "well-formed mail"), standard library only.

- multipart/alternative: text/plain first, then text/html; both UTF-8, quoted-printable, so
  the message is 7-bit clean and passes through servers without 8BITMIME or SMTPUTF8;
- display names and the subject are RFC 2047 encoded when not plain ASCII (``headers``:
  ``Cobrança, Ltda`` and ``Atenção ao Cliente`` come back exactly); addresses must be
  plain ASCII, so SMTPUTF8 is never needed;
- Date, a Message-ID derived from the notification key, ``Auto-Submitted`` (RFC 3834, so
  vacation responders do not answer a billing robot), ``X-Dunning-Kind`` and
  ``X-Dunning-Key`` (the notification's kind and outbox key);
- any CR, LF or other control character in any header value is refused with
  ``HeaderInjectionError`` before a message exists, so nothing can reach a server.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime
from email import utils
from email.message import EmailMessage
from typing import Any

from activities.notifications.errors import HeaderInjectionError, InvalidAddressError
from activities.notifications.headers import (
    WIRE_POLICY,
    PreEncoded,
    format_mailbox,
    format_unstructured,
)

# A conservative ASCII addr-spec: dot-atom local part and a dotted domain. Quoted local
# parts and address literals are legal but never needed for billing mail; refusing them
# keeps every address safe on an SMTP command line.
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_ADDRESS = re.compile(
    rf"{_ATOM}(?:\.{_ATOM})*@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
    rf"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
)


@dataclass(frozen=True)
class Sender:
    """Who a notification comes from: From address, optional display name and Reply-To."""

    address: str
    name: str | None = None
    reply_to: str | None = None

    @property
    def contact(self) -> str:
        """The address customers should write to (what the templates call contact_email)."""
        return self.reply_to or self.address

    @property
    def domain(self) -> str:
        return self.address.rpartition("@")[2].lower()

    @classmethod
    def from_settings(cls, settings: Any) -> Sender:
        """The company defaults: ``mail_from_address``, ``mail_from_name``, ``mail_reply_to``."""
        return cls(
            address=settings.mail_from_address,
            name=settings.mail_from_name or None,
            reply_to=settings.mail_reply_to or None,
        )


def sender_for(
    class_from_name: str | None,
    class_from_address: str | None,
    class_reply_to: str | None,
    defaults: Sender,
) -> Sender:
    """The class's sender, each field falling back to the company default when unset.

    ``EasyCall``/``no-reply@easycall.com``/``support@easycall.com`` -> exactly that; a class
    with none of them -> the defaults. Blank strings count as unset (a cleared form field).
    """

    def pick(value: str | None, default: str | None) -> str | None:
        return value.strip() if value and value.strip() else default

    return Sender(
        address=pick(class_from_address, None) or defaults.address,
        name=pick(class_from_name, defaults.name),
        reply_to=pick(class_reply_to, defaults.reply_to),
    )


def message_id_for(key: str, domain: str) -> str:
    """``<sha256(key)[:32]@domain>``: the same key always yields the same Message-ID, so a
    duplicate that slips through (crash between SMTP acceptance and our commit) is still
    recognisable downstream; a resend has a new key and therefore a new Message-ID."""
    check_header("Message-ID domain", domain)
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]
    return f"<{digest}@{domain.lower()}>"


def check_header(field: str, value: str | None) -> None:
    """Refuse CR, LF and any other control or line-separator character in a header value."""
    if value is None:
        return
    if "\r" in value or "\n" in value:
        raise HeaderInjectionError(
            f"{field} contains a line break (CR/LF); refusing to build the message: {value!r}"
        )
    for char in value:
        if char != "\t" and unicodedata.category(char) in ("Cc", "Zl", "Zp"):
            raise HeaderInjectionError(
                f"{field} contains the control character {char!r}; refusing to build the message"
            )


def check_address(field: str, value: str) -> str:
    """A plain ASCII addr-spec (``user@example.com``), returned stripped."""
    check_header(field, value)
    address = value.strip()
    if not _ADDRESS.fullmatch(address):
        raise InvalidAddressError(f"{field} is not a plain e-mail address: {value!r}")
    return address


def _mailbox(field: str, name: str | None, address: str) -> PreEncoded:
    check_header(f"{field} name", name)
    return format_mailbox(field, name, check_address(f"{field} address", address))


def build_message(
    *,
    sender: Sender,
    to_address: str,
    to_name: str | None,
    subject: str,
    text: str,
    html: str,
    message_id: str,
    date: datetime | None = None,
    kind: str | None = None,
    key: str | None = None,
) -> EmailMessage:
    """The complete message; raises ``HeaderInjectionError``/``InvalidAddressError``.

    ``kind`` and ``key`` become ``X-Dunning-Kind`` and ``X-Dunning-Key`` (SPEC 2.6), so a
    mail in anyone's mailbox can be traced back to its outbox row.

    Display names have runs of spaces collapsed and the subject is stripped; nothing else
    about them changes on the way to the recipient.
    """
    check_header("Subject", subject)
    check_header("Message-ID", message_id)
    # Keys embed customer ids and invoice numbers (outside data): same guard as the rest.
    check_header("X-Dunning-Kind", kind)
    check_header("X-Dunning-Key", key)
    from_box = _mailbox("From", sender.name, sender.address)
    to_box = _mailbox("To", to_name, to_address)
    reply_box = _mailbox("Reply-To", None, sender.reply_to) if sender.reply_to else None
    when = date or datetime.now(UTC)
    if when.tzinfo is None:
        raise ValueError("the Date of a message must be timezone-aware")

    message = EmailMessage(policy=WIRE_POLICY)
    message["From"] = from_box
    message["To"] = to_box
    if reply_box is not None:
        message["Reply-To"] = reply_box
    message["Subject"] = format_unstructured("Subject", subject.strip())
    message["Date"] = utils.format_datetime(when)
    message["Message-ID"] = message_id
    message["Auto-Submitted"] = "auto-generated"
    if kind is not None:
        message["X-Dunning-Kind"] = format_unstructured("X-Dunning-Kind", kind)
    if key is not None:
        message["X-Dunning-Key"] = format_unstructured("X-Dunning-Key", key)
    # Quoted-printable keeps the body 7-bit: no dependence on the server's 8BITMIME.
    message.set_content(text, subtype="plain", charset="utf-8", cte="quoted-printable")
    message.add_alternative(html, subtype="html", charset="utf-8", cte="quoted-printable")
    for part in message.iter_parts():
        # add_alternative leaves a redundant MIME-Version on the part it creates.
        del part["MIME-Version"]
    return message


def wire_bytes(message: EmailMessage) -> bytes:
    """The message exactly as it goes to the SMTP server (and into an .eml file)."""
    return message.as_bytes(policy=WIRE_POLICY)
