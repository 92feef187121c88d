"""The one-command local stack (`dunning dev`, SPEC 4.4): embedded PostgreSQL, the Temporal
dev server with its UI, a mail catcher, the worker and the API, plus an optional demo.

Entry points for the CLI:
- ``devstack.supervisor.run_dev(DevOptions) -> int`` (``dunning dev [--demo]``)
- ``devstack.mailcatcher.serve_mailcatcher(MailcatcherConfig)`` (in-process mail catcher)
"""

from devstack.options import DevOptions

__all__ = ["DevOptions"]
