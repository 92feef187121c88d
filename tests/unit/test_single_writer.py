"""The customer's workflow is the single writer of its ledger (SPEC 3, issue 10).

Statically: outside ``db/`` (where they are defined) and the ledger activities (which the
CustomerWorkflow runs), no module of the product calls a write function of
db.ledger.transactions, whichever way it is imported.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WRITES = {"issue_invoice", "apply_payment", "reverse_payment", "reevaluate",
          "evaluate_service", "assign_unmatched", "charge_late_fee", "waive_late_fee",
          "place_hold", "release_hold", "terminate_customer", "reactivate_customer"}
# db.ledger.unmatched.assign_unmatched writes the ledger too (it applies the payment).
MODULES = {"db.ledger.transactions": WRITES, "db.ledger.unmatched": {"assign_unmatched"}}
ALLOWED = {Path("activities/ledger/transactions.py")}


def product_files() -> list[Path]:
    skip = {".venv", "tests", "db", "build", "dist", "node_modules"}
    return [p for p in ROOT.rglob("*.py")
            if not (set(p.relative_to(ROOT).parts[:-1]) & skip)
            and not p.relative_to(ROOT).parts[0].startswith(".")]


def ledger_writes(tree: ast.AST) -> list[str]:
    """Calls of a db.ledger.transactions write function: ``ledger.x(...)``,
    ``db.ledger.transactions.x(...)`` or a name imported from it."""
    module_aliases: dict[str, set[str]] = {}  # local name -> the write functions it holds
    direct: dict[str, str] = {}  # local name -> write function
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                local = alias.asname or alias.name
                full = f"{node.module}.{alias.name}"
                if full in MODULES:
                    module_aliases[local] = MODULES[full]
                if alias.name in MODULES.get(node.module, set()):
                    direct[local] = alias.name
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in MODULES:
                    module_aliases[alias.asname or alias.name] = MODULES[alias.name]
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Name) and func.id in direct:
            found.append(f"{direct[func.id]} (line {node.lineno})")
        elif isinstance(func, ast.Attribute):
            owner = ast.unparse(func.value)
            if func.attr in module_aliases.get(owner, set()) or (
                    owner in MODULES and func.attr in MODULES[owner]):
                found.append(f"{owner}.{func.attr} (line {node.lineno})")
    return found


def test_only_the_ledger_activities_write_the_ledger() -> None:
    offenders = {}
    for path in product_files():
        rel = path.relative_to(ROOT)
        if rel in ALLOWED:
            continue
        calls = ledger_writes(ast.parse(path.read_text(), str(rel)))
        if calls:
            offenders[str(rel)] = calls
    assert offenders == {}


def test_the_scan_sees_every_way_of_calling_them() -> None:
    source = """
from db.ledger import transactions as ledger
from db.ledger import transactions as L
import db.ledger.transactions
from db.ledger.transactions import issue_invoice, apply_payment as pay
from db.ledger.unmatched import assign_unmatched as assign

async def f(conn, cmd):
    await ledger.reverse_payment(conn, cmd)
    await L.reevaluate(conn, cmd)
    await db.ledger.transactions.evaluate_service(conn, cmd)
    await issue_invoice(conn, cmd)
    await pay(conn, cmd)
    await assign(conn, cmd)
    ledger.payment_hash("a", "b", "c", 1, "USD")  # reads nothing, writes nothing
"""
    assert len(ledger_writes(ast.parse(source))) == 6
    assert (ROOT / "activities/ledger/transactions.py").exists()
    assert ledger_writes(ast.parse((ROOT / "activities/ledger/transactions.py").read_text()))
