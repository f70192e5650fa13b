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
