-- Issue 14 (posting throughput): on PostgreSQL the ledger roll-ups are now kept once per INSERT statement
-- (a statement-level trigger with a transition table). SQLite has no statement-level triggers; its row
-- triggers (in-process, no round trip) stay as they are. This migration exists so both trees keep the same
-- names.
SELECT 1;
