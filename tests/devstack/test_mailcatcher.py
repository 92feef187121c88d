"""The dev mail catcher: keeps every message on disk, lists it, and shows mail HTML only
sandboxed (the HTML comes from customer data)."""

from __future__ import annotations

import asyncio
import smtplib
from collections.abc import AsyncIterator
from email.message import EmailMessage
from email.utils import formataddr, make_msgid
from pathlib import Path

import httpx
import pytest

from devstack.mailcatcher import MailcatcherConfig, MailcatcherHandle, serve_mailcatcher


@pytest.fixture
async def catcher(tmp_path: Path) -> AsyncIterator[MailcatcherHandle]:
    handle = await serve_mailcatcher(
        MailcatcherConfig(tmp_path / "mail", smtp_port=0, web_port=0)
    )
    try:
        yield handle
    finally:
        await handle.stop()


def _message(subject: str, html: str, sender: str = "EasyCall <no-reply@easycall.com>",
             to: str = "alice@example.com") -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Reply-To"] = "support@easycall.com"
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(domain="easycall.com")
    message["Date"] = "Tue, 03 Jun 2025 10:00:00 +0000"
    message.set_content("plain text part\n")
    message.add_alternative(html, subtype="html")
    return message


async def _send(handle: MailcatcherHandle, message: EmailMessage) -> None:
    def send() -> None:
        with smtplib.SMTP(handle.host, handle.smtp_port, timeout=10) as smtp:
            smtp.send_message(message)

    await asyncio.to_thread(send)


async def test_a_sent_message_is_listed_with_its_headers(catcher: MailcatcherHandle) -> None:
    sender = formataddr(("Atenção ao Cliente", "no-reply@megastar.com"))
    message = _message("Sua fatura INV-06", "<p>Olá</p>", sender=sender)
    await _send(catcher, message)
    async with httpx.AsyncClient(base_url=catcher.web_url) as client:
        listed = (await client.get("/api/messages")).json()
    assert len(listed) == 1
    item = listed[0]
    assert item["from"] == "Atenção ao Cliente <no-reply@megastar.com>"
    assert item["from_name"] == "Atenção ao Cliente"
    assert item["from_address"] == "no-reply@megastar.com"
    assert item["reply_to"] == "support@easycall.com"
    assert item["to"] == "alice@example.com"
    assert item["recipients"] == ["alice@example.com"]
    assert item["subject"] == "Sua fatura INV-06"
    assert item["message_id"] == message["Message-ID"]
    assert item["date"] == "2025-06-03T10:00:00+00:00"
    assert item["id"]


async def test_newest_first_on_the_page_and_in_json(catcher: MailcatcherHandle) -> None:
    await _send(catcher, _message("first", "<p>1</p>"))
    await _send(catcher, _message("second", "<p>2</p>"))
    async with httpx.AsyncClient(base_url=catcher.web_url) as client:
        subjects = [m["subject"] for m in (await client.get("/api/messages")).json()]
        page = (await client.get("/")).text
    assert subjects == ["second", "first"]
    assert page.index(">second</a>") < page.index(">first</a>")
    assert "EasyCall &lt;no-reply@easycall.com&gt;" in page
    assert "support@easycall.com" in page


async def test_customer_html_is_escaped_and_sandboxed(catcher: MailcatcherHandle) -> None:
    evil = "<script>alert('subject')</script>"
    await _send(catcher, _message(evil, "<p>Hi</p><script>alert('body')</script>"))
    async with httpx.AsyncClient(base_url=catcher.web_url) as client:
        [item] = (await client.get("/api/messages")).json()
        page = await client.get("/")
        detail = await client.get(f"/messages/{item['id']}")
        html = await client.get(f"/messages/{item['id']}/html")
    for response in (page, detail):
        assert "<script>" not in response.text
        assert "&lt;script&gt;" in response.text
        csp = response.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "script-src" not in csp
    # The mail HTML is only shown in a sandboxed iframe …
    iframe = detail.text[detail.text.index("<iframe"):].split(">", 1)[0]
    assert " sandbox " in iframe and f"src='/messages/{item['id']}/html'" in iframe
    assert "plain text part" in detail.text
    # … and its own URL is sandboxed by CSP even when opened directly.
    assert html.status_code == 200
    csp = html.headers["content-security-policy"]
    assert csp.startswith("sandbox;") and "default-src 'none'" in csp
    assert html.headers["x-content-type-options"] == "nosniff"
    assert "<script>alert('body')</script>" in html.text  # served as-is, but inert


async def test_messages_survive_a_restart(tmp_path: Path) -> None:
    config = MailcatcherConfig(tmp_path / "mail", smtp_port=0, web_port=0)
    first = await serve_mailcatcher(config)
    try:
        await _send(first, _message("kept", "<p>kept</p>"))
    finally:
        await first.stop()
    second = await serve_mailcatcher(config)
    try:
        async with httpx.AsyncClient(base_url=second.web_url) as client:
            assert [m["subject"] for m in (await client.get("/api/messages")).json()] == ["kept"]
    finally:
        await second.stop()
    assert len(list((tmp_path / "mail").glob("*.eml"))) == 1


async def test_unknown_and_malicious_ids_are_404(catcher: MailcatcherHandle) -> None:
    async with httpx.AsyncClient(base_url=catcher.web_url) as client:
        for path in ("/messages/nope", "/messages/..%2F..%2Fetc%2Fpasswd",
                     "/messages/00000000000000000000-00000000", "/api/messages/x", "/nothing"):
            assert (await client.get(path)).status_code == 404, path


async def test_message_json_and_clearing(catcher: MailcatcherHandle) -> None:
    await _send(catcher, _message("one", "<p>one</p>"))
    async with httpx.AsyncClient(base_url=catcher.web_url) as client:
        [item] = (await client.get("/api/messages")).json()
        full = (await client.get(f"/api/messages/{item['id']}")).json()
        assert full["text"] == "plain text part\n"
        assert full["html"].strip() == "<p>one</p>"
        assert (await client.delete("/api/messages")).json() == {"deleted": 1}
        assert (await client.get("/api/messages")).json() == []


async def test_stop_frees_both_ports(tmp_path: Path) -> None:
    from devstack.ports import port_is_free

    handle = await serve_mailcatcher(MailcatcherConfig(tmp_path, smtp_port=0, web_port=0))
    ports = (handle.smtp_port, handle.web_port)
    assert not any(port_is_free(p) for p in ports)
    await handle.stop()
    assert all(port_is_free(p) for p in ports)
