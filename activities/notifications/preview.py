"""Sample messages for ``dunning notifications preview KIND --language L [--class NAME]``.

The sample is the June invoice of the worked example (SPEC 5): new charges 10.00, amount
due 20.00, a 15.00 payment leaving 5.00, rendered exactly like a real notification.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.message import EmailMessage
from zoneinfo import ZoneInfo

from activities.notifications.message import Sender, build_message, message_id_for, wire_bytes
from activities.notifications.render import build_context, render

SAMPLE_SENDER = Sender(
    address="billing@example.com", name="Example Telecom", reply_to="support@example.com"
)

# A customer per language, with the accents a real one has.
_SAMPLE_CUSTOMERS: dict[str, tuple[str, str]] = {
    "en": ("Jordan Smith", "jordan.smith@example.net"),
    "es": ("María José Fernández", "mariajose.fernandez@example.net"),
    "pt-BR": ("João Conceição", "joao.conceicao@example.net"),
}


def sample_context(
    language: str,
    *,
    company_name: str,
    contact_email: str,
    currency_code: str = "USD",
    timezone: str = "UTC",
) -> dict[str, str]:
    name, _ = _SAMPLE_CUSTOMERS.get(language, _SAMPLE_CUSTOMERS["en"])
    zone = ZoneInfo(timezone)  # sample instants are local times of the class

    def at(day: int, hour: int = 0, minute: int = 0) -> datetime:
        return datetime(2026, 6, day, hour, minute, tzinfo=zone)

    return build_context(
        language=language,
        currency_code=currency_code,
        timezone=timezone,
        customer_id="C-1001",
        customer_name=name,
        company_name=company_name,
        contact_email=contact_email,
        invoice_number="INV-2026-06",
        issued_at=at(1, 12),
        overdue_at=at(16),  # due date June 15: overdue from the next midnight
        suspend_at=at(19),
        new_charges=1000,
        amount_due=2000,
        remaining=2000,
        payment_amount=1500,
        paid_at=at(20, 9, 30),
        balance=500,
        fee_amount=40,
    )


def preview(
    kind: str,
    language: str,
    class_name: str | None = None,
    *,
    sender: Sender | None = None,
    currency_code: str = "USD",
    timezone: str = "UTC",
) -> EmailMessage:
    """A complete sample message. Pass ``sender`` (``sender_for(...)`` of the class) to see
    a class's real From/Reply-To; with only ``class_name`` its name is the From name."""
    if sender is None:
        sender = SAMPLE_SENDER
        if class_name:
            sender = Sender(address=sender.address, name=class_name, reply_to=sender.reply_to)
    context = sample_context(
        language,
        company_name=sender.name or class_name or sender.address,
        contact_email=sender.contact,
        currency_code=currency_code,
        timezone=timezone,
    )
    rendered = render(kind, language, context)
    _, to_address = _SAMPLE_CUSTOMERS.get(language, _SAMPLE_CUSTOMERS["en"])
    return build_message(
        sender=sender,
        to_address=to_address,
        to_name=context["customer_name"],
        subject=rendered.subject,
        text=rendered.text,
        html=rendered.html,
        message_id=message_id_for(f"preview:{kind}:{language}:{class_name}", sender.domain),
        date=datetime(2026, 6, 1, 12, 0, tzinfo=UTC),
    )


def preview_text(message: EmailMessage) -> str:
    """What the terminal shows: the main headers, decoded, then the plain-text part."""
    lines = [
        f"{name}: {message[name]}"
        for name in ("From", "Reply-To", "To", "Subject", "Date", "Message-ID")
        if message[name] is not None
    ]
    body = message.get_body(preferencelist=("plain",))
    text = body.get_content() if body is not None else ""
    return "\n".join(lines) + "\n\n" + text


def preview_eml(message: EmailMessage) -> bytes:
    """The message as an .eml file (``--eml FILE``), byte for byte what SMTP would carry."""
    return wire_bytes(message)
