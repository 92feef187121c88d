"""SPEC 2.6: every kind exists in every language, with the same variables; locale formatting."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from jinja2 import UndefinedError, meta

from activities.notifications.render import (
    CONTEXT_VARIABLES,
    KINDS,
    LANGUAGES,
    PARTS,
    build_context,
    choose_language,
    environment,
    format_money,
    render,
    template_name,
)
from templates import TEMPLATES_DIR


def variables(name: str) -> set[str]:
    """Undeclared variables of a template and of everything it extends or includes."""
    env = environment()
    source = env.loader.get_source(env, name)[0]
    ast = env.parse(source)
    found = set(meta.find_undeclared_variables(ast))
    for referenced in meta.find_referenced_templates(ast):
        assert referenced is not None, f"{name}: dynamic template reference"
        found |= variables(referenced)
    return found


def full_context(language: str = "en", **overrides: object) -> dict[str, str]:
    values: dict[str, object] = dict(
        language=language,
        currency_code="USD",
        timezone="America/New_York",
        customer_id="c1",
        customer_name="Ana Souza",
        company_name="EasyCall",
        contact_email="support@easycall.com",
        invoice_number="INV-06",
        issued_at=datetime(2026, 6, 1, 12, tzinfo=UTC),
        overdue_at=datetime(2026, 6, 16, 4, tzinfo=UTC),  # midnight in New York
        suspend_at=datetime(2026, 6, 19, 4, tzinfo=UTC),
        new_charges=1000,
        amount_due=2000,
        remaining=2000,
        payment_amount=1500,
        paid_at=datetime(2026, 6, 20, 15, tzinfo=UTC),
        balance=500,
        fee_amount=40,
    )
    values.update(overrides)
    return build_context(**values)  # type: ignore[arg-type]


def test_every_kind_has_subject_text_and_html_in_every_language():
    for language in LANGUAGES:
        for kind in KINDS:
            for part in PARTS:
                path = TEMPLATES_DIR / template_name(kind, language, part)
                assert path.is_file(), f"missing {path}"
                assert path.read_text(encoding="utf-8").strip(), f"empty {path}"


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_uses_the_same_variables_in_every_language(kind):
    for part in PARTS:
        by_language = {lang: variables(template_name(kind, lang, part)) for lang in LANGUAGES}
        reference = by_language["en"]
        for language, found in by_language.items():
            assert found == reference, (kind, part, language, found ^ reference)
    for language in LANGUAGES:
        text = variables(template_name(kind, language, "txt"))
        html = variables(template_name(kind, language, "html"))
        subject = variables(template_name(kind, language, "subject.txt"))
        # Text and HTML tell the same story; the subject says nothing the body does not.
        assert text == html, (kind, language, text ^ html)
        assert subject <= text, (kind, language, subject - text)
        assert text <= CONTEXT_VARIABLES, (kind, language, text - CONTEXT_VARIABLES)


def test_build_context_always_provides_exactly_the_variable_set():
    assert set(full_context()) == CONTEXT_VARIABLES
    bare = build_context(language="es", currency_code="EUR", customer_id="c",
                         customer_name="x", company_name="y", contact_email="z@y.com")
    assert set(bare) == CONTEXT_VARIABLES
    assert bare["invoice_number"] == "" and bare["amount_due"] == ""


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("kind", KINDS)
def test_every_template_renders(kind, language):
    rendered = render(kind, language, full_context(language))
    assert rendered.subject and "\n" not in rendered.subject
    assert rendered.subject == rendered.subject.strip()
    assert "Ana Souza" in rendered.text and "Ana Souza" in rendered.html
    assert rendered.html.lstrip().startswith("<!DOCTYPE html>")
    assert f'lang="{language}"' in rendered.html
    assert "\n\n\n" not in rendered.text


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("kind", KINDS)
def test_a_missing_variable_fails_instead_of_rendering_blank(kind, language):
    env = environment()
    # One context per branch ({% if balance %} ... {% elif credit %}), so that every
    # variable is actually evaluated in at least one of them.
    contexts = [full_context(language), full_context(language, balance=-700)]
    for part in PARTS:
        name = template_name(kind, language, part)
        for variable in variables(name):
            failures = 0
            for context in contexts:
                partial = {k: v for k, v in context.items() if k != variable}
                try:
                    env.get_template(name).render(partial)
                except UndefinedError:
                    failures += 1
            assert failures, f"{name} renders without {variable!r}"


def test_render_refuses_an_incomplete_context_and_strict_undefined_is_on():
    context = full_context()
    del context["remaining"]
    with pytest.raises(ValueError, match="remaining"):
        render("overdue", "en", context)
    with pytest.raises(UndefinedError):
        environment().from_string("{{ not_a_variable }}").render()
    with pytest.raises(ValueError):
        render("overdue", "fr", full_context())
    with pytest.raises(ValueError):
        render("birthday", "en", full_context())


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("kind", KINDS)
def test_html_is_escaped_and_text_is_not(kind, language):
    evil = "<script>alert(1)</script>"
    context = {name: evil for name in CONTEXT_VARIABLES}
    rendered = render(kind, language, context)
    assert "<script>" not in rendered.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in rendered.html
    assert evil in rendered.text
    assert evil in render(kind, language, full_context(language, customer_name=evil)).text


def test_money_is_formatted_for_the_locale_with_the_iso_exponent():
    assert format_money(1500, "BRL", "pt-BR") == "R$\xa015,00"
    assert format_money(1500, "USD", "en") == "$15.00"
    assert format_money(1500, "USD", "es") == "15,00\xa0US$"
    assert format_money(1500, "USD", "pt-BR") == "US$\xa015,00"
    assert format_money(123456789, "EUR", "es") == "1.234.567,89\xa0€"
    assert format_money(1500, "JPY", "en") == "¥1,500"
    assert format_money(15000, "BHD", "en") == "BHD15.000"
    # CLDR shows IQD without decimals; ISO 4217 (and our minor units) have three.
    assert format_money(15250, "IQD", "en") == "IQD15.250"
    assert format_money(-500, "USD", "en") == "-$5.00"
    with pytest.raises(TypeError):
        format_money(15.0, "USD", "en")  # type: ignore[arg-type]


def test_dates_are_long_local_dates_in_the_class_time_zone():
    context = full_context("es")
    # D is midnight June 16 in New York: the customer must pay by June 15.
    assert context["due_date"] == "15 de junio de 2026"
    assert context["issue_date"] == "1 de junio de 2026"
    assert context["suspension_date"] == "19 de junio de 2026"
    assert full_context("pt-BR")["due_date"] == "15 de junho de 2026"
    assert full_context("en")["due_date"] == "June 15, 2026"
    # A due instant at 17:00 local time is due that same day.
    at_five = full_context("en", overdue_at=datetime(2026, 6, 15, 21, tzinfo=UTC))
    assert at_five["due_date"] == "June 15, 2026"
    # 02:00 UTC on June 20 is still June 19 in New York.
    late = full_context("en", paid_at=datetime(2026, 6, 20, 2, tzinfo=UTC))
    assert late["payment_date"] == "June 19, 2026"


def test_summary_amounts_are_blank_when_zero_and_credit_is_shown():
    context = full_context("en", new_charges=2000, amount_due=2000, balance=-700)
    assert context["previous_balance"] == ""
    assert context["balance"] == ""
    assert context["credit"] == "$7.00"
    text = render("payment_received", "en", context).text
    assert "credit of $7.00" in text
    paid_up = render("payment_received", "pt-BR", full_context("pt-BR", balance=0)).text
    assert "Sua conta está em dia." in paid_up


def test_worked_example_renders_in_brazilian_portuguese():
    context = full_context("pt-BR", currency_code="BRL")
    rendered = render("invoice_issued", "pt-BR", context)
    assert rendered.subject == "EasyCall: sua fatura INV-06 já está disponível"
    assert "Total a pagar:          R$\xa020,00" in rendered.text
    assert "Saldo anterior:         R$\xa010,00" in rendered.text
    assert "Vencimento:             15 de junho de 2026" in rendered.text


@pytest.mark.parametrize(
    ("customer", "klass", "expected"),
    [
        ("es", "pt-BR", "es"),
        (None, "pt-BR", "pt-BR"),
        (None, None, "en"),
        ("", "es", "es"),
        ("pt_br", None, "pt-BR"),
        ("es-MX", "en", "es"),
        ("pt-PT", None, "pt-BR"),
        ("fr", "es", "es"),
        ("fr", "de", "en"),
    ],
)
def test_language_falls_back_customer_then_class_then_english(customer, klass, expected):
    assert choose_language(customer, klass) == expected


def test_late_fee_mail_in_every_language_with_the_issues_figures():
    """Issue 13: 2% of 20.00 is a 0.40 fee; 20.40 is then outstanding."""
    expected = {
        "en": ("A late fee of R$0.40 was added to invoice INV-06",
               "Outstanding now:    R$20.40"),
        "es": ("Se añadió un recargo por mora de 0,40\xa0BRL a la factura INV-06",
               "Saldo pendiente ahora:  20,40\xa0BRL"),
        "pt-BR": ("Multa por atraso de R$\xa00,40 lançada na fatura INV-06",
                  "Em aberto agora:        R$\xa020,40"),
    }
    for language, (subject, line) in expected.items():
        rendered = render("late_fee_charged", language, full_context(
            language, currency_code="BRL", fee_amount=40, remaining=2040))
        assert rendered.subject == subject
        assert line in rendered.text
