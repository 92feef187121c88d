-- Late fees (SPEC 2.9): a fee is a ledger entry of its invoice, read by the fold
-- (db/ledger/fold.py, domain.ledger.allocation.FeeEntry). At most one per invoice, ever:
-- a waiver marks the row (the fold then leaves it out, exactly as if never charged) and
-- keeps it, so the invoice is never charged again.
CREATE TABLE late_fees (
    id          bigserial PRIMARY KEY,
    customer_id text NOT NULL REFERENCES customers (id),
    invoice_id  bigint NOT NULL,
    amount      bigint NOT NULL CONSTRAINT late_fees_amount_positive CHECK (amount > 0),
    charged_at  timestamptz NOT NULL,
    waived_at   timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT late_fees_once_per_invoice UNIQUE (invoice_id),
    CONSTRAINT late_fees_invoice_of_customer FOREIGN KEY (invoice_id, customer_id)
        REFERENCES invoices (id, customer_id)
);

CREATE INDEX late_fees_customer_idx ON late_fees (customer_id);

-- Never deleted, and only ever changed by waiving it once: the once-per-invoice rule must
-- hold across waivers, and a charged amount is history.
CREATE FUNCTION dunning_late_fees_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'late fees are never deleted (waive them)'
            USING ERRCODE = 'check_violation';
    END IF;
    IF OLD.waived_at IS NOT NULL OR NEW.waived_at IS NULL
       OR (NEW.id, NEW.customer_id, NEW.invoice_id, NEW.amount, NEW.charged_at)
          IS DISTINCT FROM (OLD.id, OLD.customer_id, OLD.invoice_id, OLD.amount, OLD.charged_at)
    THEN
        RAISE EXCEPTION 'a late fee can only be waived, once'
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER late_fees_guard BEFORE UPDATE OR DELETE ON late_fees
    FOR EACH ROW EXECUTE FUNCTION dunning_late_fees_guard();

-- The fold's output per invoice: the fee charged on it (waived ones not counted), which
-- is part of its open amount until paid.
ALTER TABLE invoices
    ADD COLUMN fees bigint NOT NULL DEFAULT 0
        CONSTRAINT invoices_fees_non_negative CHECK (fees >= 0),
    DROP CONSTRAINT invoices_open_within_charges,
    ADD CONSTRAINT invoices_open_within_charges CHECK (open_amount <= new_charges + fees),
    -- A fee on this or an older invoice, charged after this one was issued, raises its
    -- remaining above its amount due; the bound now depends on other rows, so it is the
    -- fold's (tests/unit/test_late_fee.py), no longer a row check.
    DROP CONSTRAINT invoices_remaining_within_due;
