"""The mail catcher's mailbox: one .eml file per accepted message, so a restart keeps them.

File names sort by arrival (``<ns since epoch>-<random>.eml``) and are the message ids; ids are
validated against a strict pattern before touching the file system (no path tricks).
"""

from __future__ import annotations

import os
import re
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import getaddresses, parseaddr
from pathlib import Path
from typing import Any

_ID = re.compile(r"^[0-9]{20}-[0-9a-f]{8}$")
_PARSER = BytesParser(policy=policy.default)


def _header(message: EmailMessage, name: str) -> str:
    """The decoded header (RFC 2047 names come out readable), or '' when absent."""
    try:
        value = message.get(name)
    except Exception:  # a malformed header must not hide the message
        raw = message.get_all(name, failobj=[])  # type: ignore[arg-type]
        value = raw[0] if raw else None
    return "" if value is None else str(value)


def _iso_date(message: EmailMessage) -> str:
    try:
        header = message.get("Date")
        moment = getattr(header, "datetime", None)
    except Exception:
        moment = None
    if moment is not None:
        return moment.isoformat()
    return _header(message, "Date")


@dataclass(frozen=True)
class MessageSummary:
    id: str
    received_at: str
    from_: str
    from_name: str
    from_address: str
    reply_to: str
    to: str
    recipients: list[str]
    subject: str
    date: str
    message_id: str
    size: int

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "received_at": self.received_at,
            "from": self.from_,
            "from_name": self.from_name,
            "from_address": self.from_address,
            "reply_to": self.reply_to,
            "to": self.to,
            "recipients": self.recipients,
            "subject": self.subject,
            "date": self.date,
            "message_id": self.message_id,
            "size": self.size,
        }


@dataclass(frozen=True)
class MessageDetail:
    summary: MessageSummary
    text: str | None
    html: str | None
    raw: bytes


def _parse(raw: bytes, headersonly: bool = False) -> EmailMessage:
    # SMTP delivers CRLF line ends; the parser would keep the CRs inside decoded parts.
    return _PARSER.parsebytes(raw.replace(b"\r\n", b"\n"), headersonly=headersonly)  # type: ignore[return-value]


def _summarise(message_id: str, raw: bytes) -> MessageSummary:
    message = _parse(raw, headersonly=True)
    sender = _header(message, "From")
    name, address = parseaddr(sender)
    envelope_to = _header(message, "X-Envelope-To")
    received_ns = int(message_id.split("-", 1)[0])
    return MessageSummary(
        id=message_id,
        received_at=datetime.fromtimestamp(received_ns / 1e9, UTC).isoformat(timespec="seconds"),
        from_=sender,
        from_name=name,
        from_address=address,
        reply_to=_header(message, "Reply-To"),
        to=_header(message, "To"),
        recipients=[a for _, a in getaddresses([envelope_to]) if a],
        subject=_header(message, "Subject"),
        date=_iso_date(message),
        message_id=_header(message, "Message-ID"),
        size=len(raw),
    )


def _part(message: EmailMessage, subtype: str) -> str | None:
    body = message.get_body(preferencelist=(subtype,))
    if body is None or body.get_content_subtype() != subtype:
        return None
    try:
        return str(body.get_content())
    except Exception:  # show what we can of a broken part
        payload = body.get_payload(decode=True)
        return payload.decode("utf-8", "replace") if isinstance(payload, bytes) else None


class MailStore:
    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._cache: dict[str, MessageSummary] = {}
        self._lock = threading.Lock()

    def _path(self, message_id: str) -> Path | None:
        return self.directory / f"{message_id}.eml" if _ID.match(message_id) else None

    def save(self, content: bytes, mail_from: str, rcpt_tos: list[str]) -> str:
        """Store one message as received, with its envelope prepended as trace headers."""
        message_id = f"{time.time_ns():020d}-{secrets.token_hex(4)}"
        # Envelope addresses come from single SMTP command lines: no CR/LF can hide in them.
        trace = f"Return-Path: <{mail_from}>\r\nX-Envelope-To: {', '.join(rcpt_tos)}\r\n"
        path = self.directory / f"{message_id}.eml"
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(trace.encode("utf-8") + content)
        os.replace(tmp, path)  # atomic: readers never see half a message
        return message_id

    def ids(self) -> list[str]:
        """Newest first."""
        names = (p.stem for p in self.directory.glob("*.eml"))
        return sorted((n for n in names if _ID.match(n)), reverse=True)

    def summary(self, message_id: str) -> MessageSummary | None:
        with self._lock:
            cached = self._cache.get(message_id)
        if cached is not None:
            return cached
        path = self._path(message_id)
        if path is None or not path.is_file():
            return None
        summary = _summarise(message_id, path.read_bytes())
        with self._lock:  # files never change once written, so caching is safe
            self._cache[message_id] = summary
        return summary

    def list(self) -> list[MessageSummary]:
        return [s for s in (self.summary(i) for i in self.ids()) if s is not None]

    def get(self, message_id: str) -> MessageDetail | None:
        path = self._path(message_id)
        if path is None or not path.is_file():
            return None
        raw = path.read_bytes()
        message = _parse(raw)
        summary = self.summary(message_id) or _summarise(message_id, raw)
        return MessageDetail(summary, _part(message, "plain"), _part(message, "html"), raw)

    def clear(self) -> int:
        removed = 0
        for message_id in self.ids():
            path = self._path(message_id)
            if path is not None:
                path.unlink(missing_ok=True)
                removed += 1
        with self._lock:
            self._cache.clear()
        return removed
