-- "My tasks" for finance walks the scheduled tranches in (proposal, number) order and stops after a page. Paid
-- and waived tranches are history and grow with it; the scheduled ones are the current work. A partial index
-- holds only those, in page order, so the walk neither reads history nor sorts, and its size tells the planner
-- how few rows `status = 'scheduled'` selects (SQLite's statistics only know the average rows per status).
CREATE INDEX tranches_scheduled ON tranches (proposal_id, number) WHERE status = 'scheduled';
