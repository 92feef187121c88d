"""Connect to Temporal and make sure the search attributes our workflows set exist.

A workflow started with a search attribute the namespace does not know is refused
("Namespace default has no mapping defined for search attribute ..."). The dev stack and
the compose file register them, and so does ``connect`` once per process; ``registering``
covers a server that lost them or a client made elsewhere (tests, the API's given client):
it registers them and tries the start again.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.client import Client
from temporalio.common import SearchAttributeKey
from temporalio.service import RPCError, RPCStatusCode

from settings import Settings
from workflows import search_attributes

log = logging.getLogger("dunning.client")

T = TypeVar("T")

_MISSING_MAPPING = "no mapping defined for search attribute"
# (server, namespace) pairs whose attributes this process has checked.
_ensured: set[tuple[str, str]] = set()


async def connect(settings: Settings) -> Client:
    """A client for the configured server and namespace, with our search attributes."""
    client = await Client.connect(settings.temporal_address,
                                  namespace=settings.temporal_namespace)
    await ensure_once(client)
    return client


async def ensure_once(client: Client) -> None:
    """``ensure_search_attributes`` the first time this process sees the server and
    namespace. A server that refuses to list or add them (no operator rights) is not an
    error here: starts then go ahead, and ``registering`` reports a refused start."""
    key = (client.service_client.config.target_host, client.namespace)
    if key in _ensured:
        return
    try:
        await ensure_search_attributes(client)
    except RPCError as err:
        log.warning("could not check the search attributes of namespace %s: %s",
                    client.namespace, err.message)
        return
    _ensured.add(key)


async def ensure_search_attributes(
    client: Client, keys: Sequence[SearchAttributeKey] = search_attributes.ALL
) -> list[str]:
    """Register the search attributes the server does not know yet; returns those added."""
    existing = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=client.namespace)
    )
    known = set(existing.custom_attributes) | set(existing.system_attributes)
    # The SDK's index types carry the server's enum values.
    missing = {k.name: IndexedValueType.ValueType(int(k.indexed_value_type))
               for k in keys if k.name not in known}
    if not missing:
        return []
    try:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=client.namespace, search_attributes=missing)
        )
    except RPCError as err:
        if err.status != RPCStatusCode.ALREADY_EXISTS:
            raise
        return []  # another process registered them meanwhile
    log.info("registered search attributes: %s", ", ".join(sorted(missing)))
    return sorted(missing)


def is_missing_search_attribute(err: BaseException) -> bool:
    """The server refused a start because a search attribute is not registered."""
    seen: BaseException | None = err
    while seen is not None:
        if isinstance(seen, RPCError) and _MISSING_MAPPING in seen.message:
            return True
        seen = seen.__cause__
    return False


async def registering(client: Client, attempt: Callable[[], Awaitable[T]]) -> T:
    """Run ``attempt`` (a workflow start, signal-with-start or update-with-start); if the
    server refuses it for an unregistered search attribute, register them and run it again.

    ``attempt`` must build its request afresh on each call: a WithStartWorkflowOperation
    cannot be used twice.
    """
    try:
        return await attempt()
    except RPCError as err:
        if not is_missing_search_attribute(err):
            raise
        refused = err
    log.info("start refused (%s): registering search attributes", refused.message)
    try:
        await ensure_search_attributes(client)
    except RPCError as err:
        # No right to register them: the refusal itself is the error to report.
        raise refused from err
    _ensured.add((client.service_client.config.target_host, client.namespace))
    return await attempt()
