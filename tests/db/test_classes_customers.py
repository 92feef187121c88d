"""Classes and customers: upserts, audit records in the same transaction, refusals."""

from __future__ import annotations

import dataclasses

import psycopg
import pytest

from db.audit import list_audit
from db.classes import ClassSpec, class_spec, get_class, upsert_class
from db.collection.status import customer_status
from db.customers import NewCustomer, add_customer, get_customer_with_class
from db.errors import ClassCurrencyLocked, InvalidValue, UnknownClass
from domain.money import MoneyError
from tests.db.conftest import ADMIN, at, pay, setup_customer


async def test_class_upsert_is_audited(conn: psycopg.AsyncConnection) -> None:
    spec = ClassSpec(name="EasyCall", currency="USD", threshold=1000,
                     from_address="no-reply@easycall.com", from_name="EasyCall",
                     reply_to="support@easycall.com", language="es",
                     timezone="America/Sao_Paulo", reminders_seconds=(604800, 259200))
    created = await upsert_class(conn, spec, ADMIN)
    assert created.status == "created" and created.before is None
    assert class_spec(created.after) == spec
    assert (await upsert_class(conn, spec, ADMIN)).status == "unchanged"
    updated = await upsert_class(conn, dataclasses.replace(spec, threshold=0), ADMIN)
    assert updated.status == "updated"
    assert (updated.before.threshold, updated.after.threshold) == (1000, 0)  # type: ignore[union-attr]

    records = await list_audit(conn, target="class:EasyCall")
    assert [r.action for r in records] == ["class.update", "class.create"]
    assert records[0].before["threshold"] == 1000 and records[0].after["threshold"] == 0
    assert records[0].after["reminders_seconds"] == [604800, 259200]


async def test_class_refusals(conn: psycopg.AsyncConnection) -> None:
    with pytest.raises(MoneyError):
        await upsert_class(conn, ClassSpec(name="x", currency="XYZ"), ADMIN)
    with pytest.raises(InvalidValue, match="unknown time zone"):
        await upsert_class(conn, ClassSpec(name="x", currency="USD", timezone="Mars/Base"), ADMIN)
    with pytest.raises(InvalidValue):
        await upsert_class(conn, ClassSpec(name="x", currency="USD", threshold=-1), ADMIN)
    assert await get_class(conn, "x") is None


async def test_class_currency_cannot_change_under_money(conn: psycopg.AsyncConnection) -> None:
    await setup_customer(conn)
    klass = await get_class(conn, "residential")
    assert klass is not None
    euro = dataclasses.replace(class_spec(klass), currency="EUR")
    assert (await upsert_class(conn, euro, ADMIN)).status == "updated"  # no money yet
    await upsert_class(conn, dataclasses.replace(euro, currency="USD"), ADMIN)
    await pay(conn, "p1", 100, "2024-01-01T00:00")
    with pytest.raises(ClassCurrencyLocked):
        await upsert_class(conn, euro, ADMIN)


async def test_add_customer(conn: psycopg.AsyncConnection) -> None:
    with pytest.raises(UnknownClass, match="unknown customer class 'nope'"):
        await add_customer(conn, NewCustomer("c1", "Carol", "carol@example.com", "nope"), ADMIN)
    await setup_customer(conn)
    again = await add_customer(conn, NewCustomer("c1", "Carol", "carol@example.com",
                                                 "residential"), ADMIN)
    assert again.status == "exists"
    other = await add_customer(conn, NewCustomer("c1", "Carla", "carol@example.com",
                                                 "residential", "es"), ADMIN)
    assert other.status == "conflict" and other.customer.name == "Carol"
    [record] = await list_audit(conn, customer_id="c1")
    assert (record.action, record.on_behalf_of) == ("customer.create", "c1")
    found = await get_customer_with_class(conn, "c1")
    assert found is not None and found[1].name == "residential"


async def test_status_read_through_admin_is_audited(conn: psycopg.AsyncConnection) -> None:
    await setup_customer(conn)
    document = await customer_status(conn, "c1", at("2024-01-01T00:00"), audit=ADMIN)
    assert (document["balance"], document["invoices"]) == ("0.00", [])
    assert [r.action for r in await list_audit(conn, customer_id="c1")][0] == "customer.read"
