"""SPEC 2.6 well-formed mail: sender per class, MIME structure, headers, injection refusal."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email import policy
from email.header import decode_header, make_header
from email.parser import BytesParser

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from activities.notifications.errors import HeaderInjectionError, InvalidAddressError
from activities.notifications.headers import normalize_name
from activities.notifications.message import (
    Sender,
    build_message,
    message_id_for,
    sender_for,
    wire_bytes,
)
from activities.notifications.preview import preview, preview_eml, preview_text
from activities.notifications.render import KINDS, LANGUAGES

DEFAULTS = Sender(address="billing@acme.example", name="Acme Billing",
                  reply_to="help@acme.example")


def build(**overrides):
    values = dict(
        sender=Sender("no-reply@easycall.com", "EasyCall", "support@easycall.com"),
        to_address="ana@example.net",
        to_name="Ana Souza",
        subject="Your invoice INV-06",
        text="Hello Ana,\n\nR$\xa015,00\n",
        html="<p>Hello Ana, R$&nbsp;15,00</p>",
        message_id=message_id_for("inv:c1:INV-06:overdue", "easycall.com"),
        date=datetime(2026, 6, 16, 9, 30, tzinfo=UTC),
    )
    values.update(overrides)
    return build_message(**values)


def parse(raw: bytes):
    return BytesParser(policy=policy.default).parsebytes(raw)


def test_sender_per_class_as_in_the_spec():
    easycall = sender_for("EasyCall", "no-reply@easycall.com", "support@easycall.com", DEFAULTS)
    megastar = sender_for("MegaStar", "no-reply@megastar.com", "support@megastar.com", DEFAULTS)
    assert easycall == Sender("no-reply@easycall.com", "EasyCall", "support@easycall.com")
    assert megastar == Sender("no-reply@megastar.com", "MegaStar", "support@megastar.com")
    for sender, name in ((easycall, "EasyCall"), (megastar, "MegaStar")):
        message = parse(wire_bytes(build(sender=sender)))
        domain = name.lower()
        assert message["From"] == f"{name} <no-reply@{domain}.com>"
        assert message["Reply-To"] == f"support@{domain}.com"


def test_classes_without_a_sender_use_the_company_defaults_field_by_field():
    assert sender_for(None, None, None, DEFAULTS) == DEFAULTS
    assert sender_for("", "  ", "", DEFAULTS) == DEFAULTS
    assert sender_for("EasyCall", None, None, DEFAULTS) == Sender(
        "billing@acme.example", "EasyCall", "help@acme.example")
    assert sender_for(None, "x@easycall.com", None, DEFAULTS) == Sender(
        "x@easycall.com", "Acme Billing", "help@acme.example")
    no_reply_to = Sender("billing@acme.example")
    message = parse(wire_bytes(build(sender=sender_for(None, None, None, no_reply_to))))
    assert message["Reply-To"] is None
    assert message["From"] == "billing@acme.example"
    assert no_reply_to.contact == "billing@acme.example"


def test_sender_from_settings():
    class FakeSettings:
        mail_from_address = "billing@acme.example"
        mail_from_name = "Acme Billing"
        mail_reply_to = None

    assert Sender.from_settings(FakeSettings()) == Sender("billing@acme.example", "Acme Billing")


def test_multipart_alternative_text_then_html_utf8_with_date_and_message_id():
    raw = wire_bytes(build())
    raw.decode("ascii")  # 7-bit clean: no SMTPUTF8, no 8BITMIME needed
    assert b"\r\n" in raw
    message = parse(raw)
    assert message.get_content_type() == "multipart/alternative"
    parts = list(message.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    assert all(p.get_content_charset() == "utf-8" for p in parts)
    assert parts[0].get_content().replace("\r\n", "\n") == "Hello Ana,\n\nR$\xa015,00\n"
    assert message["Date"] == "Tue, 16 Jun 2026 09:30:00 +0000"
    assert message["Message-ID"] == message_id_for("inv:c1:INV-06:overdue", "easycall.com")
    assert message["MIME-Version"] == "1.0"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["To"] == "Ana Souza <ana@example.net>"


def test_message_id_is_deterministic_per_key():
    first = message_id_for("inv:c1:INV-06:overdue", "easycall.com")
    assert first == message_id_for("inv:c1:INV-06:overdue", "EasyCall.com")
    assert first != message_id_for("inv:c1:INV-06:overdue:resend:1", "easycall.com")
    assert first.startswith("<") and first.endswith("@easycall.com>")
    assert len(first.split("@")[0]) == 33  # "<" + 32 hex digits


@pytest.mark.parametrize(
    "name",
    ["Atenção ao Cliente", "Cobrança, Ltda", 'Jo "Q" Smith, Jr.', "Müller & Söhne GmbH",
     "株式会社テレコム", "=?utf-8?q?not_really?=", "a" * 120 + " ção",
     "María José Fernández de la Concepción García", "Ana\u00a0Maria (Financeiro)"],
)
def test_display_names_round_trip_through_the_parser(name):
    sender = Sender("no-reply@easycall.com", name, "support@easycall.com")
    message = parse(wire_bytes(build(sender=sender, to_name=name)))
    assert message["From"].addresses[0].display_name == name
    assert message["From"].addresses[0].addr_spec == "no-reply@easycall.com"
    assert message["To"].addresses[0].display_name == name


_names = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), min_size=1,
    max_size=60,
).map(str.strip).filter(bool)


def raw_header(raw: bytes, field: str) -> str:
    """The unfolded value of a header as it was on the wire."""
    head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii").replace("\r\n ", " ")
    for line in head.split("\r\n"):
        if line.startswith(f"{field}: "):
            return line[len(field) + 2:]
    raise AssertionError(f"no {field} header")


def rfc2047_display_name(raw: bytes, field: str) -> str:
    """The display name as an RFC 2047 decoder (mail clients, email.header) reads it."""
    phrase = raw_header(raw, field).rsplit(" <", 1)[0]
    return str(make_header(decode_header(phrase)))


@settings(max_examples=300, deadline=None)
@given(name=_names, subject=_names)
def test_any_printable_name_and_subject_round_trip(name, subject):
    sender = Sender("no-reply@easycall.com", name)
    raw = wire_bytes(build(sender=sender, to_name=name, subject=subject))
    raw.decode("ascii")
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
    message = parse(raw)
    assert message["Subject"] == subject
    expected = normalize_name(name)  # runs of spaces collapse; nothing else changes
    phrase = raw_header(raw, "From").rsplit(" <", 1)[0]
    if "=?" in phrase:
        assert rfc2047_display_name(raw, "From") == expected
    if not re.search(r"\?=\s+=\?", phrase):
        # Python's address parser keeps the space between adjacent encoded-words (RFC 2047
        # says to drop it); we only produce those for names longer than one encoded-word.
        assert message["From"].addresses[0].display_name == expected
        assert message["To"].addresses[0].display_name == expected


def test_a_very_long_name_is_split_into_rfc_2047_correct_encoded_words():
    name = "株式会社テレコム・ブラジル・サンパウロ支店・請求部門"
    raw = wire_bytes(build(sender=Sender("no-reply@easycall.com", name)))
    phrase = raw_header(raw, "From").rsplit(" <", 1)[0]
    assert all(len(word) <= 75 for word in phrase.split(" "))
    assert rfc2047_display_name(raw, "From") == name


@pytest.mark.parametrize(
    "overrides",
    [
        {"subject": "Invoice\r\nBcc: evil@x.example"},
        {"subject": "Invoice\nBcc: evil@x.example"},
        {"subject": "Invoice\rBcc: evil@x.example"},
        {"subject": "Invoice\u2028Bcc: evil@x.example"},
        {"to_name": "X\r\nBcc: evil@x.example"},
        {"sender": Sender("no-reply@easycall.com", "X\r\nBcc: evil@x.example")},
        {"sender": Sender("no-reply@easycall.com", "EasyCall", "a@b.com\r\nBcc: evil@x")},
        {"to_address": "ana@example.net\r\nBcc: evil@x.example"},
        {"message_id": "<a@b>\r\nBcc: evil@x.example"},
        {"subject": "nul\x00byte"},
    ],
)
def test_cr_lf_or_control_characters_in_any_header_are_refused(overrides):
    with pytest.raises(HeaderInjectionError):
        build(**overrides)


@pytest.mark.parametrize(
    "address", ["not-an-address", "ana@", "@example.net", "ana maria@example.net",
                "joão@example.net", "ana@exämple.net", "<ana@example.net>", "a@b@c.com"],
)
def test_malformed_or_non_ascii_addresses_are_refused(address):
    with pytest.raises(InvalidAddressError):
        build(to_address=address)


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("kind", KINDS)
def test_preview_builds_every_kind(kind, language):
    message = preview(kind, language, "EasyCall")
    text = preview_text(message)
    assert text.startswith("From: EasyCall <billing@example.com>\n")
    assert "\nSubject: " in text and "\n\n" in text
    assert parse(preview_eml(message))["Subject"] == message["Subject"]


def test_preview_with_a_class_sender():
    megastar = Sender("no-reply@megastar.com", "MegaStar", "support@megastar.com")
    message = preview("overdue", "pt-BR", "MegaStar", sender=megastar, currency_code="BRL",
                      timezone="America/Sao_Paulo")
    text = preview_text(message)
    assert "Reply-To: support@megastar.com" in text
    assert "R$\xa020,00" in text
    assert "vence em 15 de junho de 2026" in text or "venceu em 15 de junho de 2026" in text
    assert "support@megastar.com" in message.get_body(("html",)).get_content()
