-- Accounts, subscriptions and resellers (SPEC 2.8, MR107 `get_accounts_subscriptions`).
-- The billing system keeps these current through the feed (SPEC 4.3); Dunning never
-- invoices them, it only shows the expected charge. As in 001, the checks make states the
-- feed must never produce impossible to store: fee >= 0, end >= start, the currency is the
-- class's, the account belongs to the customer, a closed subscription has an end.

-- ---------------------------------------------------------------------------------------
-- A customer may belong to a reseller (SPEC 2.8); NULL: a direct customer (admins only).
ALTER TABLE customers ADD COLUMN reseller_id text
    CONSTRAINT customers_reseller_id_present CHECK (btrim(reseller_id) <> '');

-- A reseller's customers in id order: the scope filter and the first key of its pages.
CREATE INDEX customers_reseller_idx ON customers (reseller_id, id) WHERE reseller_id IS NOT NULL;

-- ---------------------------------------------------------------------------------------
-- An account (a phone line, a family member's service). Ids are global: the feed
-- addresses them as PUT /v1/accounts/{id}.
CREATE TABLE accounts (
    id          text PRIMARY KEY
                CONSTRAINT accounts_id_present CHECK (btrim(id) <> ''),
    customer_id text NOT NULL REFERENCES customers (id),
    name        text NOT NULL DEFAULT ''
                CONSTRAINT accounts_name_single_line CHECK (name !~ '[\r\n]'),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    -- Target of the subscriptions FK that keeps a subscription inside its customer; also
    -- the index for "a customer's accounts in id order".
    CONSTRAINT accounts_customer_id_key UNIQUE (customer_id, id)
);

CREATE TRIGGER accounts_touch BEFORE UPDATE ON accounts
    FOR EACH ROW EXECUTE FUNCTION dunning_touch_updated_at();

-- ---------------------------------------------------------------------------------------
-- Dates are calendar days in the class's time zone; `ends` and `free_until` are the last
-- day (inclusive) of service and of the free period (SPEC 2.8 "days before free_until
-- (inclusive) charge 0", "nothing after its end").
CREATE TABLE subscriptions (
    id          text PRIMARY KEY
                CONSTRAINT subscriptions_id_present CHECK (btrim(id) <> ''),
    customer_id text NOT NULL,
    account_id  text NOT NULL,
    product     text NOT NULL
                CONSTRAINT subscriptions_product_present CHECK (btrim(product) <> ''),
    fee         bigint NOT NULL                       -- monthly, minor units of `currency`
                CONSTRAINT subscriptions_fee_non_negative CHECK (fee >= 0),
    currency    char(3) NOT NULL
                CONSTRAINT subscriptions_currency_code CHECK (currency ~ '^[A-Z]{3}$'),
    starts      date NOT NULL,
    ends        date,
    free_until  date,
    status      text NOT NULL DEFAULT 'active'
                CONSTRAINT subscriptions_status CHECK (status IN ('active', 'closed')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    -- Composite key: a subscription can only name an account of its own customer.
    CONSTRAINT subscriptions_account_fkey FOREIGN KEY (customer_id, account_id)
        REFERENCES accounts (customer_id, id),
    CONSTRAINT subscriptions_ends_after_start CHECK (ends >= starts),
    CONSTRAINT subscriptions_closed_has_end CHECK (status <> 'closed' OR ends IS NOT NULL),
    CONSTRAINT subscriptions_product_single_line CHECK (product !~ '[\r\n]')
);

-- The one order every read uses: a customer's view (account, then subscription), keyset
-- pages for admins and resellers `(customer_id, account_id, id) > cursor`, and the FK
-- lookups from accounts.
CREATE INDEX subscriptions_customer_account_idx ON subscriptions (customer_id, account_id, id);

CREATE TRIGGER subscriptions_touch BEFORE UPDATE ON subscriptions
    FOR EACH ROW EXECUTE FUNCTION dunning_touch_updated_at();

-- ---------------------------------------------------------------------------------------
-- SPEC 2.1: every amount of a customer is in its class currency (as payments in 001).
-- The error names its constraint so callers can map it like a CHECK violation.
CREATE FUNCTION dunning_subscription_currency_matches_class() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    class_currency char(3);
BEGIN
    SELECT cc.currency INTO class_currency
      FROM customers c JOIN customer_classes cc ON cc.name = c.class_name
     WHERE c.id = NEW.customer_id;
    -- No customer: the account FK refuses the row with its own, clearer error.
    IF class_currency IS NOT NULL AND class_currency <> NEW.currency THEN
        RAISE EXCEPTION 'subscription currency % does not match the customer''s class currency %',
            NEW.currency, class_currency
            USING ERRCODE = 'check_violation',
                  CONSTRAINT = 'subscriptions_currency_matches_class',
                  TABLE = 'subscriptions', COLUMN = 'currency';
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER subscriptions_currency_matches_class
    BEFORE INSERT OR UPDATE OF currency, customer_id ON subscriptions
    FOR EACH ROW EXECUTE FUNCTION dunning_subscription_currency_matches_class();

-- The match above must stay true afterwards: the class currency may not change under
-- subscriptions, nor may their customer move to a class of another currency. Separate
-- triggers beside 001's (which guard invoices and payments) so that neither is rewritten.
CREATE FUNCTION dunning_class_currency_locked_by_subscriptions() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.currency IS DISTINCT FROM OLD.currency AND EXISTS (
        SELECT 1 FROM customers c JOIN subscriptions s ON s.customer_id = c.id
         WHERE c.class_name = OLD.name)
    THEN
        RAISE EXCEPTION 'cannot change the currency of class % from % to %: its customers have subscriptions',
            OLD.name, OLD.currency, NEW.currency
            USING ERRCODE = 'check_violation',
                  CONSTRAINT = 'customer_classes_currency_locked_by_subscriptions';
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER customer_classes_currency_locked_by_subscriptions
    BEFORE UPDATE OF currency ON customer_classes
    FOR EACH ROW EXECUTE FUNCTION dunning_class_currency_locked_by_subscriptions();

CREATE FUNCTION dunning_customer_class_currency_locked_by_subscriptions() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.class_name IS DISTINCT FROM OLD.class_name
       AND (SELECT currency FROM customer_classes WHERE name = NEW.class_name)
           IS DISTINCT FROM (SELECT currency FROM customer_classes WHERE name = OLD.class_name)
       AND EXISTS (SELECT 1 FROM subscriptions s WHERE s.customer_id = OLD.id)
    THEN
        RAISE EXCEPTION 'cannot move customer % to class % with another currency: it has subscriptions',
            OLD.id, NEW.class_name
            USING ERRCODE = 'check_violation',
                  CONSTRAINT = 'customers_class_currency_locked_by_subscriptions';
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER customers_class_currency_locked_by_subscriptions
    BEFORE UPDATE OF class_name ON customers
    FOR EACH ROW EXECUTE FUNCTION dunning_customer_class_currency_locked_by_subscriptions();

-- ---------------------------------------------------------------------------------------
-- An account or subscription never changes customer: another customer's view (and another
-- reseller's scope) would silently gain or lose it. The feed refuses such a move with a
-- clear message first (db/subscriptions.py); this is the guarantee behind it.
CREATE FUNCTION dunning_customer_id_fixed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.customer_id IS DISTINCT FROM OLD.customer_id THEN
        RAISE EXCEPTION '% % belongs to customer % and cannot move to customer %',
            TG_TABLE_NAME, OLD.id, OLD.customer_id, NEW.customer_id
            USING ERRCODE = 'check_violation',
                  CONSTRAINT = TG_TABLE_NAME || '_customer_fixed',
                  TABLE = TG_TABLE_NAME, COLUMN = 'customer_id';
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER accounts_customer_fixed BEFORE UPDATE OF customer_id ON accounts
    FOR EACH ROW EXECUTE FUNCTION dunning_customer_id_fixed();
CREATE TRIGGER subscriptions_customer_fixed BEFORE UPDATE OF customer_id ON subscriptions
    FOR EACH ROW EXECUTE FUNCTION dunning_customer_id_fixed();
