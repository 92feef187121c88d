-- Dunning schema. Money is bigint minor units of the class currency (SPEC 2.1).
-- Derived columns (invoice balances, statuses, allocations, customer balance/credit) are
-- written only by db/ledger.py from the domain fold; the checks below make states that
-- no fold can produce impossible to store.
-- Applied by db/migrate.py in one transaction (schema_migrations is its own).

-- Keeps updated_at honest without every query having to remember it.
CREATE FUNCTION dunning_touch_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END;
$$;

-- True when PostgreSQL knows the zone; used by a check so a typo never reaches the scheduler.
CREATE FUNCTION dunning_is_timezone(name text) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT EXISTS (SELECT 1 FROM pg_timezone_names WHERE pg_timezone_names.name = $1)
$$;

-- ---------------------------------------------------------------------------------------
CREATE TABLE customer_classes (
    name              text PRIMARY KEY
                      CONSTRAINT customer_classes_name_present CHECK (btrim(name) <> ''),
    currency          char(3) NOT NULL
                      CONSTRAINT customer_classes_currency_code CHECK (currency ~ '^[A-Z]{3}$'),
    threshold         bigint NOT NULL DEFAULT 0
                      CONSTRAINT customer_classes_threshold_non_negative CHECK (threshold >= 0),
    -- NULL sender fields fall back to the company defaults in settings (SPEC 2.6).
    from_address      text,
    from_name         text,
    reply_to          text,
    language          text NOT NULL DEFAULT 'en'
                      CONSTRAINT customer_classes_language CHECK (language IN ('en', 'es', 'pt-BR')),
    timezone          text NOT NULL DEFAULT 'UTC'
                      CONSTRAINT customer_classes_timezone_known CHECK (dunning_is_timezone(timezone)),
    reminders_seconds bigint[] NOT NULL DEFAULT '{259200}'
                      CONSTRAINT customer_classes_reminders_valid CHECK (
                          array_position(reminders_seconds, NULL) IS NULL
                          AND coalesce(array_ndims(reminders_seconds), 1) = 1
                          AND 0 <= ALL (reminders_seconds)),
    grace_seconds     bigint NOT NULL DEFAULT 0
                      CONSTRAINT customer_classes_grace_non_negative CHECK (grace_seconds >= 0),
    warning_seconds   bigint NOT NULL DEFAULT 86400
                      CONSTRAINT customer_classes_warning_non_negative CHECK (warning_seconds >= 0),
    payment_receipts  boolean NOT NULL DEFAULT true,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT customer_classes_sender_single_line CHECK (
        concat(from_address, from_name, reply_to) !~ '[\r\n]')
);

CREATE TRIGGER customer_classes_touch BEFORE UPDATE ON customer_classes
    FOR EACH ROW EXECUTE FUNCTION dunning_touch_updated_at();

-- ---------------------------------------------------------------------------------------
CREATE TABLE customers (
    id                 text PRIMARY KEY
                       CONSTRAINT customers_id_present CHECK (btrim(id) <> ''),
    name               text NOT NULL,
    email              text NOT NULL
                       CONSTRAINT customers_email_shape CHECK (email ~ '^[^@\s]+@[^@\s]+$'),
    class_name         text NOT NULL REFERENCES customer_classes (name) ON UPDATE CASCADE,
    language           text
                       CONSTRAINT customers_language CHECK (language IN ('en', 'es', 'pt-BR')),
    service_state      text NOT NULL DEFAULT 'active'
                       CONSTRAINT customers_service_state CHECK (service_state IN ('active', 'suspended')),
    service_changed_at timestamptz,
    -- Outstanding balance: open amounts minus unapplied credit; negative when in credit.
    balance            bigint NOT NULL DEFAULT 0,
    credit             bigint NOT NULL DEFAULT 0
                       CONSTRAINT customers_credit_non_negative CHECK (credit >= 0),
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    -- Credit exists only when every invoice is paid, so the balance is then exactly -credit.
    CONSTRAINT customers_credit_means_nothing_open CHECK (credit = 0 OR balance = -credit),
    CONSTRAINT customers_name_single_line CHECK (name !~ '[\r\n]')
);

CREATE INDEX customers_class_name_idx ON customers (class_name);

CREATE TRIGGER customers_touch BEFORE UPDATE ON customers
    FOR EACH ROW EXECUTE FUNCTION dunning_touch_updated_at();

-- ---------------------------------------------------------------------------------------
CREATE TABLE invoices (
    id                bigserial PRIMARY KEY,
    customer_id       text NOT NULL REFERENCES customers (id),
    number            text NOT NULL
                      CONSTRAINT invoices_number_present CHECK (btrim(number) <> ''),
    issued_at         timestamptz NOT NULL,
    due_text          text NOT NULL
                      CONSTRAINT invoices_due_text_present CHECK (btrim(due_text) <> ''),
    overdue_at        timestamptz NOT NULL,               -- D
    suspend_at        timestamptz NOT NULL,               -- S = D + grace
    new_charges       bigint NOT NULL
                      CONSTRAINT invoices_new_charges_non_negative CHECK (new_charges >= 0),
    previous_balance  bigint NOT NULL,
    amount_due        bigint NOT NULL,
    open_amount       bigint NOT NULL
                      CONSTRAINT invoices_open_amount_non_negative CHECK (open_amount >= 0),
    remaining         bigint NOT NULL
                      CONSTRAINT invoices_remaining_non_negative CHECK (remaining >= 0),
    received          bigint NOT NULL DEFAULT 0
                      CONSTRAINT invoices_received_non_negative CHECK (received >= 0),
    collection_status text NOT NULL
                      CONSTRAINT invoices_collection_status
                      CHECK (collection_status IN ('collect', 'do_not_collect')),
    payment_status    text NOT NULL
                      CONSTRAINT invoices_payment_status
                      CHECK (payment_status IN ('unpaid', 'partially_paid', 'paid')),
    cancelled_at      timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT invoices_customer_number_key UNIQUE (customer_id, number),
    -- Target of the allocations FK that keeps an allocation inside one customer.
    CONSTRAINT invoices_id_customer_key UNIQUE (id, customer_id),
    CONSTRAINT invoices_amount_due_sum CHECK (amount_due = previous_balance + new_charges),
    CONSTRAINT invoices_open_within_charges CHECK (open_amount <= new_charges),
    CONSTRAINT invoices_remaining_within_due CHECK (remaining <= greatest(amount_due, 0)),
    CONSTRAINT invoices_suspend_after_overdue CHECK (suspend_at >= overdue_at),
    -- SPEC 2.2: paid exactly when nothing remains; SPEC 2.3: collect needs remaining > T >= 0.
    CONSTRAINT invoices_paid_iff_nothing_remains
        CHECK ((payment_status = 'paid') = (remaining = 0)),
    CONSTRAINT invoices_collect_needs_remaining
        CHECK (collection_status = 'do_not_collect' OR remaining > 0)
);

-- The fold reads a customer's live invoices oldest first.
CREATE INDEX invoices_customer_live_idx ON invoices (customer_id, issued_at, number)
    WHERE cancelled_at IS NULL;
-- Open invoices (dashboards, re-runs, suspension sweeps).
CREATE INDEX invoices_open_idx ON invoices (customer_id, suspend_at)
    WHERE cancelled_at IS NULL AND remaining > 0;
CREATE INDEX invoices_collect_suspend_idx ON invoices (suspend_at)
    WHERE cancelled_at IS NULL AND collection_status = 'collect';

CREATE TRIGGER invoices_touch BEFORE UPDATE ON invoices
    FOR EACH ROW EXECUTE FUNCTION dunning_touch_updated_at();

-- ---------------------------------------------------------------------------------------
CREATE TABLE payments (
    id          bigserial PRIMARY KEY,
    processor   text NOT NULL CONSTRAINT payments_processor_present CHECK (btrim(processor) <> ''),
    payment_id  text NOT NULL CONSTRAINT payments_payment_id_present CHECK (btrim(payment_id) <> ''),
    customer_id text NOT NULL REFERENCES customers (id),
    amount      bigint NOT NULL CONSTRAINT payments_amount_positive CHECK (amount > 0),
    currency    char(3) NOT NULL CONSTRAINT payments_currency_code CHECK (currency ~ '^[A-Z]{3}$'),
    received_at timestamptz NOT NULL,
    -- sha256 of the canonical request: same id + same hash = duplicate, else conflict.
    body_hash   text NOT NULL CONSTRAINT payments_body_hash_sha256 CHECK (body_hash ~ '^[0-9a-f]{64}$'),
    status      text NOT NULL DEFAULT 'applied'
                CONSTRAINT payments_status CHECK (status IN ('applied', 'reversed')),
    reversed_at timestamptz,
    source      text NOT NULL
                CONSTRAINT payments_source CHECK (source IN ('api', 'cli', 'temporal', 'assigned')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT payments_processor_payment_id_key UNIQUE (processor, payment_id),
    CONSTRAINT payments_id_customer_key UNIQUE (id, customer_id),
    CONSTRAINT payments_reversed_has_time CHECK ((status = 'reversed') = (reversed_at IS NOT NULL))
);

-- The fold reads a customer's applied payments in recording order.
CREATE INDEX payments_customer_applied_idx ON payments (customer_id, id) WHERE status = 'applied';

-- SPEC 2.1: every amount of a customer is in its class currency.
CREATE FUNCTION dunning_payment_currency_matches_class() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    class_currency char(3);
BEGIN
    SELECT cc.currency INTO class_currency
      FROM customers c JOIN customer_classes cc ON cc.name = c.class_name
     WHERE c.id = NEW.customer_id;
    IF class_currency IS NOT NULL AND class_currency <> NEW.currency THEN
        RAISE EXCEPTION 'payment currency % does not match the customer''s class currency %',
            NEW.currency, class_currency
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER payments_currency_matches_class
    BEFORE INSERT OR UPDATE OF currency, customer_id ON payments
    FOR EACH ROW EXECUTE FUNCTION dunning_payment_currency_matches_class();

-- Stored amounts would silently change meaning if the currency under them changed.
CREATE FUNCTION dunning_class_currency_locked() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.currency IS DISTINCT FROM OLD.currency AND EXISTS (
        SELECT 1 FROM customers c
         WHERE c.class_name = OLD.name
           AND (EXISTS (SELECT 1 FROM invoices i WHERE i.customer_id = c.id)
                OR EXISTS (SELECT 1 FROM payments p WHERE p.customer_id = c.id)))
    THEN
        RAISE EXCEPTION 'cannot change the currency of class % from % to %: its customers have invoices or payments',
            OLD.name, OLD.currency, NEW.currency
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER customer_classes_currency_locked
    BEFORE UPDATE OF currency ON customer_classes
    FOR EACH ROW EXECUTE FUNCTION dunning_class_currency_locked();

CREATE FUNCTION dunning_customer_class_currency_locked() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.class_name IS DISTINCT FROM OLD.class_name
       AND (SELECT currency FROM customer_classes WHERE name = NEW.class_name)
           IS DISTINCT FROM (SELECT currency FROM customer_classes WHERE name = OLD.class_name)
       AND (EXISTS (SELECT 1 FROM invoices i WHERE i.customer_id = OLD.id)
            OR EXISTS (SELECT 1 FROM payments p WHERE p.customer_id = OLD.id))
    THEN
        RAISE EXCEPTION 'cannot move customer % to class % with another currency: it has invoices or payments',
            OLD.id, NEW.class_name
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER customers_class_currency_locked
    BEFORE UPDATE OF class_name ON customers
    FOR EACH ROW EXECUTE FUNCTION dunning_customer_class_currency_locked();

-- ---------------------------------------------------------------------------------------
-- Derived: replaced every time the customer's fold is recomputed.
CREATE TABLE allocations (
    customer_id    text NOT NULL REFERENCES customers (id),
    payment_row_id bigint NOT NULL,               -- payments.id (not the processor's payment_id)
    invoice_id     bigint NOT NULL,               -- invoices.id
    amount         bigint NOT NULL CONSTRAINT allocations_amount_positive CHECK (amount > 0),
    PRIMARY KEY (payment_row_id, invoice_id),
    -- Composite keys: an allocation can never join one customer's payment to another's invoice.
    FOREIGN KEY (payment_row_id, customer_id) REFERENCES payments (id, customer_id) ON DELETE CASCADE,
    FOREIGN KEY (invoice_id, customer_id) REFERENCES invoices (id, customer_id) ON DELETE CASCADE
);

CREATE INDEX allocations_customer_idx ON allocations (customer_id);
CREATE INDEX allocations_invoice_idx ON allocations (invoice_id);

-- ---------------------------------------------------------------------------------------
-- Payments for customers we do not know: kept for finance, never dropped (SPEC 4.3).
CREATE TABLE unmatched_payments (
    id                bigserial PRIMARY KEY,
    processor         text NOT NULL CONSTRAINT unmatched_processor_present CHECK (btrim(processor) <> ''),
    payment_id        text NOT NULL CONSTRAINT unmatched_payment_id_present CHECK (btrim(payment_id) <> ''),
    customer_ref      text NOT NULL,
    amount            text NOT NULL,                 -- as received; parsed when assigned
    currency          text NOT NULL,
    received_at       timestamptz NOT NULL,
    body              jsonb NOT NULL,
    body_hash         text NOT NULL
                      CONSTRAINT unmatched_body_hash_sha256 CHECK (body_hash ~ '^[0-9a-f]{64}$'),
    status            text NOT NULL DEFAULT 'unmatched'
                      CONSTRAINT unmatched_status CHECK (status IN ('unmatched', 'assigned')),
    assigned_customer text REFERENCES customers (id),
    assigned_at       timestamptz,
    assigned_by       text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT unmatched_processor_payment_id_key UNIQUE (processor, payment_id),
    CONSTRAINT unmatched_assignment_complete CHECK (
        (status = 'assigned')
        = (assigned_customer IS NOT NULL AND assigned_at IS NOT NULL AND assigned_by IS NOT NULL))
);

CREATE INDEX unmatched_payments_open_idx ON unmatched_payments (created_at)
    WHERE status = 'unmatched';

-- ---------------------------------------------------------------------------------------
-- The notification outbox (SPEC 2.6): a row exists before its mail is sent.
CREATE TABLE notifications (
    key            text PRIMARY KEY CONSTRAINT notifications_key_present CHECK (btrim(key) <> ''),
    kind           text NOT NULL CONSTRAINT notifications_kind CHECK (kind IN (
                       'invoice_issued', 'due_reminder', 'overdue', 'suspension_warning',
                       'service_suspended', 'service_resumed', 'payment_received')),
    customer_id    text NOT NULL REFERENCES customers (id),
    invoice_number text,
    language       text NOT NULL
                   CONSTRAINT notifications_language CHECK (language IN ('en', 'es', 'pt-BR')),
    to_address     text NOT NULL,
    from_address   text NOT NULL,
    from_name      text,
    reply_to       text,
    subject        text NOT NULL,
    context        jsonb NOT NULL DEFAULT '{}',
    message_id     text NOT NULL CONSTRAINT notifications_message_id_key UNIQUE,
    status         text NOT NULL DEFAULT 'pending'
                   CONSTRAINT notifications_status CHECK (status IN ('pending', 'sent', 'failed')),
    attempts       integer NOT NULL DEFAULT 0
                   CONSTRAINT notifications_attempts_non_negative CHECK (attempts >= 0),
    last_error     text,
    resend_of      text REFERENCES notifications (key),
    created_at     timestamptz NOT NULL DEFAULT now(),
    sent_at        timestamptz,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    -- An invoice notification names an invoice of the same customer (MATCH SIMPLE: NULL skips).
    CONSTRAINT notifications_invoice_fkey FOREIGN KEY (customer_id, invoice_number)
        REFERENCES invoices (customer_id, number),
    CONSTRAINT notifications_sent_has_time CHECK (status <> 'sent' OR sent_at IS NOT NULL),
    -- Header injection guard (SPEC 2.6): no header value may carry CR or LF.
    CONSTRAINT notifications_headers_single_line CHECK (
        concat(to_address, from_address, from_name, reply_to, subject, message_id) !~ '[\r\n]')
);

CREATE INDEX notifications_customer_idx ON notifications (customer_id, created_at);
CREATE INDEX notifications_unsent_idx ON notifications (status, created_at) WHERE status <> 'sent';
CREATE INDEX notifications_resend_of_idx ON notifications (resend_of) WHERE resend_of IS NOT NULL;

CREATE TRIGGER notifications_touch BEFORE UPDATE ON notifications
    FOR EACH ROW EXECUTE FUNCTION dunning_touch_updated_at();

-- ---------------------------------------------------------------------------------------
-- Suspensions and resumptions with their time and reason (SPEC 2.4).
CREATE TABLE service_events (
    id          bigserial PRIMARY KEY,
    customer_id text NOT NULL REFERENCES customers (id),
    state       text NOT NULL CONSTRAINT service_events_state CHECK (state IN ('active', 'suspended')),
    causes      text[] NOT NULL DEFAULT '{}',         -- invoice numbers
    reason      text NOT NULL,
    occurred_at timestamptz NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT service_events_suspension_has_cause
        CHECK (state = 'active' OR cardinality(causes) > 0)
);

CREATE INDEX service_events_customer_idx ON service_events (customer_id, occurred_at);

-- ---------------------------------------------------------------------------------------
-- Idempotency of Temporal activity retries: the first committed result, by token.
CREATE TABLE customer_operations (
    token       text PRIMARY KEY CONSTRAINT customer_operations_token_present CHECK (token <> ''),
    customer_id text REFERENCES customers (id),      -- NULL for unmatched payments
    kind        text NOT NULL,
    result      jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX customer_operations_customer_idx ON customer_operations (customer_id);

-- ---------------------------------------------------------------------------------------
-- Audit trail (SPEC 2.7): append-only, enforced by the database itself.
CREATE TABLE audit_log (
    id           bigserial PRIMARY KEY,
    at           timestamptz NOT NULL DEFAULT now(),
    actor        text NOT NULL CONSTRAINT audit_log_actor_present CHECK (btrim(actor) <> ''),
    realm        text NOT NULL CONSTRAINT audit_log_realm CHECK (realm IN ('admin', 'reseller', 'system')),
    on_behalf_of text,
    action       text NOT NULL CONSTRAINT audit_log_action_present CHECK (btrim(action) <> ''),
    target       text NOT NULL CONSTRAINT audit_log_target_present CHECK (btrim(target) <> ''),
    before       jsonb,
    after        jsonb,
    reason       text,
    request_id   text
);

CREATE INDEX audit_log_on_behalf_of_idx ON audit_log (on_behalf_of, id) WHERE on_behalf_of IS NOT NULL;
CREATE INDEX audit_log_target_idx ON audit_log (target, id);
CREATE INDEX audit_log_at_idx ON audit_log (at);

CREATE FUNCTION dunning_audit_log_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'Audit records can only be inserted (SPEC 2.7).';
END;
$$;

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION dunning_audit_log_append_only();
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION dunning_audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION dunning_audit_log_append_only();
