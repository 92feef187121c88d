"""``dunning api``: serve the HTTP API with uvicorn."""

from __future__ import annotations

import uvicorn

from api.app import create_app
from settings import get_settings


def serve(host: str, port: int) -> None:
    app = create_app(get_settings())
    # No Server header: nothing to learn about our stack from the outside.
    uvicorn.run(app, host=host, port=port, server_header=False, log_level="info")
