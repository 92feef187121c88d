"""A local SMTP catcher for `dunning dev`: keeps every message and shows them on a web page.

- SMTP (aiosmtpd) on ``smtp_port`` (default 1025) accepts anything, stores it as .eml.
- Web page on ``web_port`` (default 8025): list, one message (HTML sandboxed + text), raw;
  JSON at ``/api/messages`` and ``/api/messages/<id>``; ``DELETE /api/messages`` empties it.

In-process: ``handle = await serve_mailcatcher(config)`` … ``await handle.stop()``.
As a program: ``python -m devstack.mailcatcher --data-dir DIR [--smtp-port N] [--web-port N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from pathlib import Path

from aiosmtpd.smtp import SMTP, Envelope, Session

from devstack.mailstore import MailStore
from devstack.mailweb import make_server
from devstack.options import HOST

log = logging.getLogger("dunning.mailcatcher")

# Far above any notification we send; keeps a runaway sender from filling the disk.
MAX_MESSAGE_BYTES = 10 * 1024 * 1024


@dataclass(frozen=True)
class MailcatcherConfig:
    data_dir: Path
    host: str = HOST
    smtp_port: int = 1025  # 0 = any free port (tests)
    web_port: int = 8025


class _StoreHandler:
    def __init__(self, store: MailStore) -> None:
        self.store = store

    async def handle_DATA(  # noqa: N802 (aiosmtpd API)
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        content = envelope.original_content or envelope.content or b""
        if isinstance(content, str):
            content = content.encode("utf-8")
        mail_from = envelope.mail_from or ""
        # A thread: the disk write must not stall other SMTP sessions on the loop.
        message_id = await asyncio.to_thread(
            self.store.save, content, mail_from, list(envelope.rcpt_tos)
        )
        log.info("received %s from %s to %s", message_id, mail_from, ", ".join(envelope.rcpt_tos))
        return f"250 2.0.0 OK queued as {message_id}"


@dataclass
class MailcatcherHandle:
    store: MailStore
    host: str
    smtp_port: int
    web_port: int
    _smtp: asyncio.Server = field(repr=False)
    _web: ThreadingHTTPServer = field(repr=False)
    _web_thread: threading.Thread = field(repr=False)

    @property
    def web_url(self) -> str:
        return f"http://{self.host}:{self.web_port}"

    async def stop(self) -> None:
        self._smtp.close()
        await self._smtp.wait_closed()
        # shutdown() blocks until serve_forever returns: keep the event loop free meanwhile.
        await asyncio.to_thread(self._web.shutdown)
        self._web.server_close()
        await asyncio.to_thread(self._web_thread.join, 5)


async def serve_mailcatcher(config: MailcatcherConfig) -> MailcatcherHandle:
    """Start SMTP and the web page on the running loop; both are listening on return."""
    store = MailStore(config.data_dir)
    handler = _StoreHandler(store)
    loop = asyncio.get_running_loop()
    smtp = await loop.create_server(
        lambda: SMTP(
            handler,
            hostname="dunning-mailcatcher",
            data_size_limit=MAX_MESSAGE_BYTES,
            enable_SMTPUTF8=True,
            decode_data=False,
        ),
        host=config.host,
        port=config.smtp_port,
        reuse_address=True,
    )
    try:
        web = make_server(store, config.host, config.web_port)
    except BaseException:
        smtp.close()
        raise
    thread = threading.Thread(
        target=web.serve_forever, kwargs={"poll_interval": 0.2}, name="mailcatcher-web",
        daemon=True,
    )
    thread.start()
    smtp_port = int(smtp.sockets[0].getsockname()[1])
    return MailcatcherHandle(
        store, config.host, smtp_port, int(web.server_address[1]), smtp, web, thread
    )


async def run_mailcatcher(config: MailcatcherConfig) -> None:
    """Serve until SIGINT/SIGTERM, then stop cleanly."""
    handle = await serve_mailcatcher(config)
    print(
        f"mail catcher: SMTP {config.host}:{handle.smtp_port}, web {handle.web_url}, "
        f"messages in {handle.store.directory}",
        flush=True,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        await handle.stop()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.mailcatcher", description=__doc__)
    parser.add_argument("--data-dir", type=Path, default=Path("./.data/mail"))
    parser.add_argument("--host", default=HOST)
    parser.add_argument("--smtp-port", type=int, default=1025)
    parser.add_argument("--web-port", type=int, default=8025)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    # aiosmtpd logs every connection at INFO (readiness probes included): keep the console
    # to one line per accepted message.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    config = MailcatcherConfig(args.data_dir.resolve(), args.host, args.smtp_port, args.web_port)
    try:
        asyncio.run(run_mailcatcher(config))
    except OSError as exc:
        print(f"mail catcher: cannot listen: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
