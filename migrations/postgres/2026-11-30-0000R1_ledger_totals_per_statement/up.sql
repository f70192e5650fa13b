-- Issue 14 (posting throughput): the daily and monthly roll-ups of the ledger kept once per INSERT statement
-- on `ledger_entries` instead of once per entry row. One trigger reads the statement's new entries (a
-- transition table), sums them per roll-up key and upserts each roll-up row once, in key order (so two
-- postings always lock shared roll-up rows in the same order): a 2-leg posting costs one trigger call and two
-- upserts instead of four trigger calls and four upserts. Same figures as before; `ledger check` still
-- compares both roll-ups with the entries.
DROP TRIGGER ledger_entries_daily_totals ON ledger_entries;
DROP TRIGGER ledger_entries_monthly_totals ON ledger_entries;

CREATE FUNCTION ledger_totals_add_statement() RETURNS trigger AS $$
BEGIN
    WITH moved AS (
        SELECT t.pool_id, CAST(t.created_at AS DATE) AS day, a.kind AS account_kind, t.kind AS transaction_kind,
               SUM(n.amount_minor) AS total_minor, COUNT(*) AS entries
        FROM new_entries n
        JOIN ledger_transactions t ON t.id = n.transaction_id
        JOIN ledger_accounts a ON a.id = n.account_id
        GROUP BY 1, 2, 3, 4
    ), daily AS (
        INSERT INTO ledger_daily_totals (pool_id, day, account_kind, transaction_kind, total_minor, entries)
        SELECT pool_id, day, account_kind, transaction_kind, total_minor, entries FROM moved
        ORDER BY pool_id, day, account_kind, transaction_kind
        ON CONFLICT (pool_id, day, account_kind, transaction_kind) DO UPDATE
        SET total_minor = ledger_daily_totals.total_minor + EXCLUDED.total_minor,
            entries = ledger_daily_totals.entries + EXCLUDED.entries
    )
    INSERT INTO ledger_monthly_totals (pool_id, month, account_kind, transaction_kind, total_minor, entries)
    SELECT pool_id, CAST(date_trunc('month', day) AS DATE), account_kind, transaction_kind, SUM(total_minor), SUM(entries)
    FROM moved
    GROUP BY 1, 2, 3, 4
    ORDER BY 1, 2, 3, 4
    ON CONFLICT (pool_id, month, account_kind, transaction_kind) DO UPDATE
    SET total_minor = ledger_monthly_totals.total_minor + EXCLUDED.total_minor,
        entries = ledger_monthly_totals.entries + EXCLUDED.entries;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER ledger_entries_totals AFTER INSERT ON ledger_entries
    REFERENCING NEW TABLE AS new_entries
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_totals_add_statement();
