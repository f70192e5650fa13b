-- What-if for disbursement_http (QIP_BENCH_SCRIPTS): a tranche payment with the same reads as the service, but
-- its writes (two audit events, the posting, payment, tranche, proposal, notification outbox, idempotency record:
-- the same rows) in one statement. PostgreSQL only: SQLite has no INSERT/UPDATE inside WITH.
\set n random(1, {targets})
SELECT proposal_id, acc_commit, acc_disb, acc_first, acc_second FROM bench_targets WHERE n = :n \gset
SELECT u.id, u.username, u.organization_id, u.status, h.id, h.hat, h.scope_organization_id, h.valid_from, h.valid_until, h.acting FROM users u LEFT JOIN hats h ON h.user_id = u.id AND h.revoked_at IS NULL WHERE u.id = :user_id;
SELECT * FROM proposals WHERE id = :proposal_id;
SELECT * FROM pools WHERE id = :pool_id;
\set idem_key random(1, 1000000000000)
BEGIN;
SELECT l.locked, k.request_hash, k.status, k.response_status, k.response_body, k.expires_at FROM (SELECT pg_try_advisory_xact_lock(:idem_key) AS locked) AS l LEFT JOIN idempotency_keys AS k ON l.locked AND k.user_id = :user_id AND k.idem_key = :idem_key::text;
SELECT * FROM proposals WHERE id = :proposal_id FOR UPDATE;
SELECT * FROM approval_steps WHERE proposal_id = :proposal_id ORDER BY version_number, position;
SELECT * FROM tranches WHERE proposal_id = :proposal_id ORDER BY number;
SELECT * FROM reports WHERE proposal_id = :proposal_id ORDER BY submitted_at;
SELECT id, kind, owner_id FROM ledger_accounts WHERE pool_id = :pool_id AND ((kind = 'commitment' AND owner_id = :proposal_id) OR (kind = 'disbursed' AND owner_id = :proposal_id));
SELECT h.id, h.hat, h.user_id, u.organization_id FROM hats h JOIN users u ON u.id = h.user_id WHERE h.hat IN ('qip_officer', 'submitter') AND h.revoked_at IS NULL AND u.status <> 'disabled';
SELECT user_id, email_mode FROM notification_preferences WHERE user_id IN (:user_id, (SELECT created_by FROM proposals WHERE id = :proposal_id));
SELECT * FROM webhook_endpoints WHERE organization_id IN ((SELECT organization_id FROM proposals WHERE id = :proposal_id)) AND active ORDER BY id;
WITH ids AS (SELECT gen_random_uuid()::text AS tx_id, gen_random_uuid()::text AS ev1, gen_random_uuid()::text AS ev2, gen_random_uuid()::text AS notice_id, (SELECT created_by FROM proposals WHERE id = :proposal_id) AS drafter),
a1 AS (INSERT INTO audit_events (id, occurred_at, actor_id, actor_username, organization_id, hat, acting, action, entity_type, entity_id, request_id, client_addr, outcome, reason, before_state, after_state) SELECT ev1, now(), :user_id, 'finance', NULL, 'finance_officer', false, 'ledger.disbursement', 'transaction', NULL, gen_random_uuid()::text, '127.0.0.1', 'success', NULL, NULL, repeat('x', 400) FROM ids),
t AS (INSERT INTO ledger_transactions (id, pool_id, kind, proposal_id, amount_minor, reference, memo, contributor_id, original_currency, original_minor, fx_rate, reversal_of, idempotency_key, created_by, hat, request_id, created_at) SELECT tx_id, :pool_id, 'disbursement', :proposal_id, 1, 'BENCH', 'tranche 1', NULL, NULL, NULL, NULL, NULL, :user_id::text || ':' || :idem_key::text, :user_id, 'finance_officer', gen_random_uuid()::text, now() FROM ids RETURNING id),
e AS (INSERT INTO ledger_entries (transaction_id, leg, account_id, amount_minor) SELECT t.id, v.leg, v.acc, v.amt FROM t, (VALUES (0, :acc_commit, -1), (1, :acc_disb, 1)) AS v(leg, acc, amt)),
b AS (UPDATE ledger_balances SET balance_minor = balance_minor + CASE WHEN account_id = :acc_commit THEN -1 ELSE 1 END WHERE account_id IN (:acc_commit, :acc_disb)),
p AS (INSERT INTO tranche_payments (transaction_id, proposal_id, tranche_number, amount_minor, paid_on, payment_reference, paid_by, created_at) SELECT t.id, :proposal_id, 1, 1, current_date, 'BENCH', :user_id, now() FROM t),
tr AS (UPDATE tranches SET paid_minor = paid_minor + 1 WHERE proposal_id = :proposal_id AND number = 1),
pr AS (UPDATE proposals SET version = version + 1, updated_at = now() WHERE id = :proposal_id),
a2 AS (INSERT INTO audit_events (id, occurred_at, actor_id, actor_username, organization_id, hat, acting, action, entity_type, entity_id, request_id, client_addr, outcome, reason, before_state, after_state) SELECT ev2, now(), :user_id, 'finance', NULL, 'finance_officer', false, 'implementation.disburse', 'proposal', :proposal_id, gen_random_uuid()::text, '127.0.0.1', 'success', NULL, NULL, repeat('y', 150) FROM ids RETURNING id),
ne AS (INSERT INTO notification_events (id, kind, audit_event_id, entity_type, entity_id, proposal_id, summary, link, payload, created_at) SELECT ids.notice_id, 'tranche_paid', a2.id, 'proposal', :proposal_id, :proposal_id, 'A tranche was paid', '/api/v1/proposals', repeat('z', 300), now() FROM ids, a2 RETURNING id),
nf AS (INSERT INTO notifications (id, user_id, event_id, kind, summary, reason, link, read_at, created_at) SELECT gen_random_uuid()::text, r.uid, ne.id, 'tranche_paid', 'A tranche was paid', r.why, '/api/v1/proposals', NULL, now() FROM ne, ids, LATERAL (VALUES (:user_id, 'you are a QIP officer'), (ids.drafter, 'you drafted this proposal')) AS r(uid, why)),
d AS (INSERT INTO notification_deliveries (id, event_id, channel, user_id, webhook_id, reason, digest, status, attempts, next_attempt_at, locked_until, locked_by, last_error, last_status_code, delivered_at, created_at) SELECT gen_random_uuid()::text, ne.id, 'email', r.uid, NULL, r.why, false, 'pending', 0, now(), NULL, NULL, NULL, NULL, NULL, now() FROM ne, ids, LATERAL (VALUES (:user_id, 'you are a QIP officer'), (ids.drafter, 'you drafted this proposal')) AS r(uid, why))
INSERT INTO idempotency_keys (user_id, idem_key, request_hash, status, response_status, response_body, transaction_id, locked_until, created_at, expires_at) SELECT :user_id, :idem_key::text, md5(random()::text), 'done', 201, repeat('x', 900), t.id, now(), now(), now() + interval '7 days' FROM t;
COMMIT;
