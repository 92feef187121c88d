"""Webhook signatures (SPEC 4.3): pure functions, no I/O, no clock of their own.

Header ``Dunning-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>...]`` where each ``v1`` is
``hex(HMAC-SHA256(secret, "<t>.<raw body>"))``. A processor may hold several secrets while
rotating, and may send several ``v1`` values (one per secret it knows); one match is enough.

Every failure raises ``SignatureError`` whose ``reason`` is for our logs only: callers
answer with one generic message so an attacker learns nothing about which check failed.
Secrets never appear in messages or reprs.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pydantic import SecretStr

HEADER = "Dunning-Signature"
TOLERANCE_SECONDS = 300
GENERIC_MESSAGE = "invalid or missing signature"

# Bounds keep the work per request small whatever an attacker sends.
_MAX_HEADER_LENGTH = 2048
_MAX_SIGNATURES = 8
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_HEX_SHA256 = re.compile(r"[0-9a-fA-F]{64}")

Secret = SecretStr | str


class SignatureError(Exception):
    """The request is not signed by a processor we know; ``reason`` is for logs only."""

    def __init__(self, reason: str) -> None:
        super().__init__(GENERIC_MESSAGE)
        self.reason = reason


@dataclass(frozen=True)
class ParsedSignature:
    timestamp: int
    timestamp_text: str  # signed exactly as sent
    signatures: tuple[str, ...]  # lower-case hex


def parse_header(value: str | None) -> ParsedSignature:
    """Parse ``t=...,v1=...``; unknown schemes (``v0=``) are ignored for forward compatibility."""
    if not value:
        raise SignatureError("missing header")
    if len(value) > _MAX_HEADER_LENGTH:
        raise SignatureError("header too long")
    timestamps: list[str] = []
    signatures: list[str] = []
    for item in value.split(","):
        key, sep, val = item.strip().partition("=")
        if not sep:
            raise SignatureError("malformed header item")
        if key == "t":
            timestamps.append(val)
        elif key == "v1":
            if not _HEX_SHA256.fullmatch(val):
                raise SignatureError("malformed v1 value")
            signatures.append(val.lower())
    if len(timestamps) != 1 or not _TIMESTAMP.fullmatch(timestamps[0]):
        raise SignatureError("malformed or repeated timestamp")
    if not signatures or len(signatures) > _MAX_SIGNATURES:
        raise SignatureError("no or too many v1 values")
    return ParsedSignature(int(timestamps[0]), timestamps[0], tuple(signatures))


def compute(secret: Secret, timestamp: int | str, body: bytes) -> str:
    """Hex HMAC-SHA256 of ``"<t>.<raw body>"``."""
    key = _reveal(secret).encode()
    return hmac.new(key, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign(secrets: Secret | Sequence[Secret], body: bytes, timestamp: int) -> str:
    """The header value a processor sends (used by tests and by processors' examples)."""
    many = [secrets] if isinstance(secrets, SecretStr | str) else list(secrets)
    parts = [f"t={timestamp}", *(f"v1={compute(s, timestamp, body)}" for s in many)]
    return ",".join(parts)


def check_timestamp(timestamp: int, now: float, tolerance: int = TOLERANCE_SECONDS) -> None:
    """More than ``tolerance`` seconds off in either direction is refused (replays, skew)."""
    if abs(now - timestamp) > tolerance:
        raise SignatureError("timestamp outside tolerance")


def signing_processors(header: str | None, body: bytes,
                       secrets: Mapping[str, Sequence[Secret]], now: float,
                       tolerance: int = TOLERANCE_SECONDS) -> frozenset[str]:
    """The processors one of whose secrets produced one of the ``v1`` values.

    Checked against every configured secret, so the raw body is authenticated before any
    byte of it is parsed; the caller then requires the processor the request names (body or
    path) to be among them. Raises SignatureError when none matches.
    """
    parsed = parse_header(header)
    check_timestamp(parsed.timestamp, now, tolerance)
    matched: set[str] = set()
    for processor, processor_secrets in secrets.items():
        for secret in processor_secrets:
            expected = compute(secret, parsed.timestamp_text, body)
            # Compare against every value without stopping early: constant work per request.
            if any([hmac.compare_digest(expected, given) for given in parsed.signatures]):
                matched.add(processor)
    if not matched:
        raise SignatureError("no signature matches a configured secret")
    return frozenset(matched)


def verify(header: str | None, body: bytes, processor: str,
           secrets: Mapping[str, Sequence[Secret]], now: float,
           tolerance: int = TOLERANCE_SECONDS) -> None:
    """Raise SignatureError unless ``processor`` (known, with a matching secret) signed."""
    if processor not in signing_processors(header, body, secrets, now, tolerance):
        raise SignatureError("signed by another processor than the one named")


def _reveal(secret: Secret) -> str:
    return secret.get_secret_value() if isinstance(secret, SecretStr) else secret
