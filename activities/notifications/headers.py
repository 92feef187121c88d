"""Header values encoded by hand (RFC 5322 + RFC 2047), ASCII-only on the wire.

Why not let ``email.policy.SMTP`` encode them? Its folder and parser disagree on a few
things a billing mailer hits with real customer names:

- it splits a long non-ASCII display name into adjacent encoded-words, and Python's own
  parser (unlike RFC 2047 and mail clients) then keeps the space between them, so
  ``"María José Fernández de la Concepción"`` does not come back unchanged;
- it may break the line right after ``Subject:``, which the parser reads back with a
  leading space;
- an ASCII name that looks like an encoded-word (``=?utf-8?q?...?=``) is sent as is and
  decoded by the receiver into something else.

So: a display name is written as atoms, a quoted-string, or encoded-words where each
maximal run of words needing encoding becomes *one* encoded-word when it fits in 75
characters (it does for any realistic name), and only longer runs are split (RFC-correct;
only Python's parser adds spaces there). A subject is plain ASCII folded at spaces, or
entirely encoded-words (unstructured text, where adjacent encoded-words are handled right
by everyone). The values are stored pre-folded and emitted verbatim by ``WIRE_POLICY``.
"""

from __future__ import annotations

import re
from email import base64mime, quoprimime
from email.policy import EmailPolicy
from typing import Any

MAX_LINE = 78  # RFC 5322 "SHOULD"; the hard limit is 998
MAX_ENCODED_WORD = 75  # RFC 2047

_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+")
_PRINTABLE_ASCII = re.compile(r"[\x20-\x7e]*")


class PreEncoded(str):
    """A header value already encoded and folded (``"\\n "`` between lines)."""


class _WirePolicy(EmailPolicy):
    """``policy.SMTP`` that stores ``PreEncoded`` values as raw strings and never refolds
    them; every other header is handled exactly as ``policy.SMTP`` does."""

    def header_store_parse(self, name: str, value: Any) -> tuple[str, Any]:
        if isinstance(value, PreEncoded):
            return (name, str(value))
        return super().header_store_parse(name, value)


WIRE_POLICY = _WirePolicy(linesep="\r\n", refold_source="none")


def _encoded_word(text: str) -> str:
    data = text.encode("utf-8")
    # quoprimime's header map is the RFC 2047 section 5(3) "phrase" set: safe everywhere.
    q = quoprimime.header_encode(data, "utf-8")
    b = base64mime.header_encode(data, "utf-8")
    return q if len(q) <= len(b) else b


def _encoded_words(text: str) -> list[str]:
    """``text`` as encoded-words of at most 75 characters, never splitting a character."""
    if len(_encoded_word(text)) <= MAX_ENCODED_WORD:
        return [_encoded_word(text)]
    words: list[str] = []
    chunk = ""
    for char in text:
        if chunk and len(_encoded_word(chunk + char)) > MAX_ENCODED_WORD:
            words.append(_encoded_word(chunk))
            chunk = char
        else:
            chunk += char
    if chunk:
        words.append(_encoded_word(chunk))
    return words


def _needs_encoding(text: str) -> bool:
    return "=?" in text or not _PRINTABLE_ASCII.fullmatch(text)


def _fold(field: str, tokens: list[str]) -> str:
    """Join tokens with single spaces, breaking lines before a space when one gets long."""
    lines: list[str] = []
    line = ""
    width = len(field) + 2  # "Field: "
    for token in tokens:
        if line and width + len(line) + 1 + len(token) > MAX_LINE:
            lines.append(line)
            line, width = token, 1  # continuation lines start with one space
        else:
            line = f"{line} {token}" if line else token
    lines.append(line)
    return "\n ".join(lines)


def normalize_name(name: str | None) -> str:
    """Runs of ASCII spaces/tabs become one space (insignificant between words anyway)."""
    return re.sub(r"[ \t]+", " ", name or "").strip()


def format_mailbox(field: str, name: str | None, address: str) -> PreEncoded:
    """``name <address>`` with the name as atoms, a quoted-string or encoded-words."""
    display = normalize_name(name)
    if not display:
        return PreEncoded(address)
    words = display.split(" ")
    if not any(_needs_encoding(word) for word in words):
        if all(_ATOM.fullmatch(word) for word in words):
            return PreEncoded(_fold(field, [*words, f"<{address}>"]))
        quoted = display.replace("\\", "\\\\").replace('"', '\\"')
        return PreEncoded(_fold(field, [f'"{quoted}"', f"<{address}>"]))
    # Words that are plain atoms stay readable; each maximal run of the others (non-ASCII,
    # specials such as "," or ".", "=?") is encoded together, spaces included, so that no
    # two encoded-words are adjacent unless a run is longer than one encoded-word.
    tokens: list[str] = []
    run: list[str] = []
    for word in words:
        if _ATOM.fullmatch(word) and "=?" not in word:
            if run:
                tokens += _encoded_words(" ".join(run))
                run = []
            tokens.append(word)
        else:
            run.append(word)
    if run:
        tokens += _encoded_words(" ".join(run))
    return PreEncoded(_fold(field, [*tokens, f"<{address}>"]))


def format_unstructured(field: str, text: str) -> PreEncoded:
    """A Subject: ASCII folded at spaces (exactly reversible), else encoded-words."""
    if not _needs_encoding(text):
        # Break before a space that follows a non-space, so unfolding restores the text.
        pieces = re.split(r"(?<=\S)(?= )", text)
        lines: list[str] = []
        line = ""
        width = len(field) + 2
        for piece in pieces:
            if line and width + len(line) + len(piece) > MAX_LINE:
                lines.append(line)
                line, width = piece, 0  # the piece starts with its own space
            else:
                line += piece
        lines.append(line)
        return PreEncoded("\n".join(lines))
    return PreEncoded(_fold(field, _encoded_words(text)))
