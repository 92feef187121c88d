from __future__ import annotations

import pytest

from tests.support.stack import running_stack


@pytest.fixture
async def stack(temporal_env, database_url, smtp_sink):
    async with running_stack(temporal_env, database_url, smtp_sink.host, smtp_sink.port) as s:
        yield s
