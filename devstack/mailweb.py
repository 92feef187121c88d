"""The mail catcher's web page and JSON API (stdlib http.server: no extra dependency).

Mail HTML is customer data: it is only ever served from its own URL with a CSP that
sandboxes it (no scripts, unique origin, no remote loads) and shown in a sandboxed iframe.
Everything else on the page is escaped.
"""

from __future__ import annotations

import json
import re
from html import escape
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from devstack.mailstore import MailStore, MessageSummary

# The catcher's own pages: inline CSS only, frames only from itself, nothing else.
PAGE_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; frame-src 'self'; img-src 'self' data:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
# A message's HTML part: `sandbox` makes it an opaque origin without scripts even when the
# URL is opened directly; only inline styles and data: images render (no tracking pixels).
MAIL_HTML_CSP = (
    "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'self'"
)

_STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5rem;color:#222}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.35rem .5rem;
border-bottom:1px solid #ddd;vertical-align:top;font-size:.9rem}th{background:#f4f4f4}
tr:hover td{background:#fafafa}a{color:#0b5cad}small{color:#666}
iframe{width:100%;height:32rem;border:1px solid #ccc}pre{white-space:pre-wrap;
background:#f8f8f8;padding:1rem;border:1px solid #eee}
"""

_ROUTE = re.compile(r"^/(?:api/)?messages/(?P<id>[0-9]{20}-[0-9a-f]{8})(?P<rest>/html|/raw)?$")


def _page(title: str, body: str, refresh: bool = False) -> bytes:
    meta = '<meta http-equiv="refresh" content="5">' if refresh else ""
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{escape(title)}</title>{meta}<style>{_STYLE}</style></head>"
        f"<body>{body}</body></html>"
    ).encode()


def render_list(messages: list[MessageSummary]) -> bytes:
    rows = "".join(
        "<tr>"
        f"<td><small>{escape(m.received_at)}</small></td>"
        f"<td>{escape(m.from_)}</td>"
        f"<td>{escape(m.reply_to)}</td>"
        f"<td>{escape(m.to)}</td>"
        f"<td><a href='/messages/{m.id}'>{escape(m.subject) or '(no subject)'}</a></td>"
        "</tr>"
        for m in messages
    )
    if not rows:
        rows = "<tr><td colspan='5'>No messages yet.</td></tr>"
    body = (
        f"<h1>Dunning mail catcher</h1><p>{len(messages)} message(s), newest first. "
        "JSON: <a href='/api/messages'>/api/messages</a></p>"
        "<table><thead><tr><th>Received</th><th>From</th><th>Reply-To</th><th>To</th>"
        f"<th>Subject</th></tr></thead><tbody>{rows}</tbody></table>"
    )
    return _page("Mail catcher", body, refresh=True)


def render_detail(summary: MessageSummary, text: str | None, has_html: bool) -> bytes:
    headers = [
        ("Date", summary.date),
        ("From", summary.from_),
        ("Reply-To", summary.reply_to),
        ("To", summary.to),
        ("Subject", summary.subject),
        ("Message-ID", summary.message_id),
        ("Envelope to", ", ".join(summary.recipients)),
    ]
    table = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in headers)
    html_part = (
        f"<h2>HTML part</h2><iframe sandbox referrerpolicy='no-referrer' "
        f"title='HTML part' src='/messages/{summary.id}/html'></iframe>"
        if has_html
        else "<p><em>No HTML part.</em></p>"
    )
    text_part = (
        f"<h2>Text part</h2><pre>{escape(text)}</pre>"
        if text is not None
        else "<p><em>No text part.</em></p>"
    )
    body = (
        f"<p><a href='/'>&larr; all messages</a> · <a href='/messages/{summary.id}/raw'>raw</a>"
        f"</p><h1>{escape(summary.subject) or '(no subject)'}</h1><table>{table}</table>"
        f"{html_part}{text_part}"
    )
    return _page(summary.subject or "Message", body)


class MailWebHandler(BaseHTTPRequestHandler):
    store: MailStore  # set on the subclass made by make_server
    server_version = "dunning-mailcatcher"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:
        pass  # requests are not interesting in a dev console

    def _send(
        self, status: int, body: bytes, content_type: str, csp: str = PAGE_CSP
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Security-Policy", csp)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, data: Any) -> None:
        self._send(status, json.dumps(data, ensure_ascii=False).encode(), "application/json")

    def _not_found(self) -> None:
        self._send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain; charset=utf-8")

    def do_HEAD(self) -> None:  # noqa: N802 (stdlib naming)
        self.do_GET()

    def do_GET(self) -> None:  # noqa: N802
        path = urlsplit(self.path).path
        if path == "/":
            body = render_list(self.store.list())
            self._send(HTTPStatus.OK, body, "text/html; charset=utf-8")
            return
        if path == "/healthz":
            self._send(HTTPStatus.OK, b"ok\n", "text/plain; charset=utf-8")
            return
        if path == "/api/messages":
            self._json(HTTPStatus.OK, [m.as_json() for m in self.store.list()])
            return
        match = _ROUTE.match(path)
        detail = self.store.get(match["id"]) if match else None
        if match is None or detail is None:
            self._not_found()
            return
        rest, is_api = match["rest"], path.startswith("/api/")
        if is_api and rest is None:
            data = detail.summary.as_json() | {"text": detail.text, "html": detail.html}
            self._json(HTTPStatus.OK, data)
        elif is_api:
            self._not_found()
        elif rest == "/html":
            if detail.html is None:
                self._not_found()
                return
            self._send(
                HTTPStatus.OK, detail.html.encode(), "text/html; charset=utf-8", MAIL_HTML_CSP
            )
        elif rest == "/raw":
            self._send(HTTPStatus.OK, detail.raw, "text/plain; charset=utf-8", MAIL_HTML_CSP)
        else:
            body = render_detail(detail.summary, detail.text, detail.html is not None)
            self._send(HTTPStatus.OK, body, "text/html; charset=utf-8")

    def do_DELETE(self) -> None:  # noqa: N802
        if urlsplit(self.path).path != "/api/messages":
            self._not_found()
            return
        self._json(HTTPStatus.OK, {"deleted": self.store.clear()})


def make_server(store: MailStore, host: str, port: int) -> ThreadingHTTPServer:
    handler = type("BoundMailWebHandler", (MailWebHandler,), {"store": store})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True  # a slow browser must not block shutdown
    return server
