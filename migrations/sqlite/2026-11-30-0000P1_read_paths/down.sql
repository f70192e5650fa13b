DROP TRIGGER ledger_entries_daily_totals;
DROP TABLE ledger_daily_totals;
DROP INDEX consultees_pending;
DROP INDEX tranche_payments_first;
DROP INDEX reports_proposal_kind;
DROP INDEX flags_status;
DROP INDEX approval_steps_decided_by;
