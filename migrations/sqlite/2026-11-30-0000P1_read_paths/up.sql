-- Indexes for reads that must stay flat as history grows (issue 14).
-- "My tasks" for finance: proposals where the payer decided a step (access::may_pay).
CREATE INDEX approval_steps_decided_by ON approval_steps (decided_by, proposal_id);
-- "My tasks" for submitters: open flags, joined to the proposals of one organisation.
CREATE INDEX flags_status ON flags (status, proposal_id);
-- "My tasks" for finance: accepted reports of a proposal by kind.
CREATE INDEX reports_proposal_kind ON reports (proposal_id, status, kind);
-- First payment of a proposal (implementation deadline).
CREATE INDEX tranche_payments_first ON tranche_payments (proposal_id, paid_on);
-- Pending consultations of an organisation, by round.
CREATE INDEX consultees_pending ON consultees (organization_id, status, round_id);

-- Ledger movements per pool, day, account kind and transaction kind, kept by the database as entries are
-- written (same transaction), so a statement or a pool's balances sum a few rows per day instead of every
-- entry of the pool's history. Derived data: `ledger check` compares it with the entries.
CREATE TABLE ledger_daily_totals (
    pool_id          TEXT NOT NULL,
    day              DATE NOT NULL,
    account_kind     TEXT NOT NULL,
    transaction_kind TEXT NOT NULL,
    total_minor      BIGINT NOT NULL,
    entries          BIGINT NOT NULL,
    PRIMARY KEY (pool_id, day, account_kind, transaction_kind)
);

CREATE TRIGGER ledger_entries_daily_totals AFTER INSERT ON ledger_entries
BEGIN
    INSERT INTO ledger_daily_totals (pool_id, day, account_kind, transaction_kind, total_minor, entries)
    SELECT t.pool_id, date(t.created_at), a.kind, t.kind, NEW.amount_minor, 1
    FROM ledger_transactions t, ledger_accounts a
    WHERE t.id = NEW.transaction_id AND a.id = NEW.account_id
    ON CONFLICT (pool_id, day, account_kind, transaction_kind) DO UPDATE
    SET total_minor = total_minor + excluded.total_minor,
        entries = entries + 1;
END;

INSERT INTO ledger_daily_totals (pool_id, day, account_kind, transaction_kind, total_minor, entries)
SELECT t.pool_id, date(t.created_at), a.kind, t.kind, SUM(e.amount_minor), COUNT(*)
FROM ledger_entries e
JOIN ledger_transactions t ON t.id = e.transaction_id
JOIN ledger_accounts a ON a.id = e.account_id
WHERE true
GROUP BY t.pool_id, date(t.created_at), a.kind, t.kind;
