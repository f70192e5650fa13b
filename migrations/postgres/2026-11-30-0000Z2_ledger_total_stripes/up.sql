-- Issue 14 (posting throughput): the ledger's daily and monthly roll-ups were one row per (pool, day or month,
-- account kind, transaction kind), so every posting of a pool on a day updated the same rows and held their
-- locks to its commit: tranche payments to different proposals of one pool queued behind each other there,
-- although they share no balance row. Each roll-up key now has stripes: a posting adds to the stripe of its
-- connection (`qip.ledger_stripe`, set by the service once per pooled connection, 0-15; other sessions use
-- their backend's number), so concurrent postings from one instance never share a roll-up row. Readers sum
-- the stripes (every reader already sums); the sweeper folds the stripes of past days and months into stripe
-- 0, so reads stay a bounded number of rows. `ledger check` still compares both roll-ups with the entries.
ALTER TABLE ledger_daily_totals ADD COLUMN stripe SMALLINT NOT NULL DEFAULT 0;
ALTER TABLE ledger_daily_totals DROP CONSTRAINT ledger_daily_totals_pkey;
ALTER TABLE ledger_daily_totals ADD PRIMARY KEY (pool_id, day, account_kind, transaction_kind, stripe);
-- What the fold finds: only rows not yet folded.
CREATE INDEX ledger_daily_totals_unfolded ON ledger_daily_totals (day) WHERE stripe <> 0;

ALTER TABLE ledger_monthly_totals ADD COLUMN stripe SMALLINT NOT NULL DEFAULT 0;
ALTER TABLE ledger_monthly_totals DROP CONSTRAINT ledger_monthly_totals_pkey;
ALTER TABLE ledger_monthly_totals ADD PRIMARY KEY (pool_id, month, account_kind, transaction_kind, stripe);
CREATE INDEX ledger_monthly_totals_unfolded ON ledger_monthly_totals (month) WHERE stripe <> 0;

CREATE OR REPLACE FUNCTION ledger_totals_add_statement() RETURNS trigger AS $$
DECLARE
    -- The connection's stripe; a session the service did not set up uses its backend's.
    my_stripe SMALLINT := COALESCE(NULLIF(current_setting('qip.ledger_stripe', true), '')::SMALLINT,
                                   (pg_backend_pid() % 16)::SMALLINT);
BEGIN
    WITH moved AS (
        SELECT t.pool_id, CAST(t.created_at AS DATE) AS day, a.kind AS account_kind, t.kind AS transaction_kind,
               SUM(n.amount_minor) AS total_minor, COUNT(*) AS entries
        FROM new_entries n
        JOIN ledger_transactions t ON t.id = n.transaction_id
        JOIN ledger_accounts a ON a.id = n.account_id
        GROUP BY 1, 2, 3, 4
    ), daily AS (
        INSERT INTO ledger_daily_totals (pool_id, day, account_kind, transaction_kind, stripe, total_minor, entries)
        SELECT pool_id, day, account_kind, transaction_kind, my_stripe, total_minor, entries FROM moved
        ORDER BY pool_id, day, account_kind, transaction_kind
        ON CONFLICT (pool_id, day, account_kind, transaction_kind, stripe) DO UPDATE
        SET total_minor = ledger_daily_totals.total_minor + EXCLUDED.total_minor,
            entries = ledger_daily_totals.entries + EXCLUDED.entries
    )
    INSERT INTO ledger_monthly_totals (pool_id, month, account_kind, transaction_kind, stripe, total_minor, entries)
    SELECT pool_id, CAST(date_trunc('month', day) AS DATE), account_kind, transaction_kind, my_stripe,
           SUM(total_minor), SUM(entries)
    FROM moved
    GROUP BY 1, 2, 3, 4
    ORDER BY 1, 2, 3, 4
    ON CONFLICT (pool_id, month, account_kind, transaction_kind, stripe) DO UPDATE
    SET total_minor = ledger_monthly_totals.total_minor + EXCLUDED.total_minor,
        entries = ledger_monthly_totals.entries + EXCLUDED.entries;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;
