-- A batch of four transfers as Coffer's PostgreSQL batcher sends it: BEGIN, the lock timeout,
-- the users' and the accounts' rows taken in one order, each payment's seven statements
-- (the pay lock, the end of a row of wrong passwords, the day's spending, the transaction,
-- the two cards with their entries, the idempotency record), COMMIT; one pipeline, one Sync.
-- A cost emulation for pgbench (-M prepared), on a database that coffer bench made (users 1-100).
-- See BENCHMARKS.md, "Where the time goes now".
\set a1 random(1,100)
\set b1 (:a1 % 100) + 1
\set k1 random(1, 4000000000000000000)
\set a2 random(1,100)
\set b2 (:a2 % 100) + 1
\set k2 random(1, 4000000000000000000)
\set a3 random(1,100)
\set b3 (:a3 % 100) + 1
\set k3 random(1, 4000000000000000000)
\set a4 random(1,100)
\set b4 (:a4 % 100) + 1
\set k4 random(1, 4000000000000000000)
\set now 1764000000000
\startpipeline
BEGIN;
SET LOCAL lock_timeout = '500ms';
SELECT 1 FROM users WHERE id = ANY(ARRAY[:a1,:a2,:a3,:a4]::bigint[]) ORDER BY id FOR UPDATE;
SELECT 1 FROM accounts a JOIN unnest(ARRAY[:a1,:b1,:a2,:b2,:a3,:b3,:a4,:b4]::bigint[], ARRAY['card','card','card','card','card','card','card','card']::text[], ARRAY['CNY','CNY','CNY','CNY','CNY','CNY','CNY','CNY']::text[], ARRAY['','','','','','','','']::text[], ARRAY[0,0,0,0,0,0,0,0]::bigint[]) AS k (user_id, kind, asset, product, lot) ON a.user_id = k.user_id AND a.kind = k.kind AND a.asset = k.asset AND a.product = k.product AND a.lot = k.lot ORDER BY a.user_id, a.kind COLLATE "C", a.asset COLLATE "C", a.product COLLATE "C", a.lot FOR UPDATE OF a;
SELECT coffer_refuse_if(pay_locked_until_ms > :now, 'PAY_LOCKED') FROM users WHERE id = :a1 FOR UPDATE;
UPDATE users SET pay_failures = 0, pay_locked_until_ms = 0 WHERE id = :a1 AND pay_failures > 0;
INSERT INTO spend_days (user_id, day, spent, limit_fen) VALUES (:a1, '2026-12-06', 1, 5000000) ON CONFLICT (user_id, day) DO UPDATE SET spent = spend_days.spent + excluded.spent, limit_fen = excluded.limit_fen;
INSERT INTO transactions (user_id, kind, memo, created_at_ms) VALUES (:a1, 'transfer', '', :now) RETURNING id;
WITH account AS (UPDATE accounts SET balance = balance + CAST(-1 AS BIGINT) WHERE user_id = :a1 AND kind = 'card' AND asset = 'CNY' AND product = '' AND lot = 0 RETURNING id, balance) INSERT INTO entries (tx_id, account_id, user_id, account_kind, amount, balance_after, group_balance_after, method, details, created_at_ms) SELECT currval('transactions_id_seq'), account.id, CAST(:a1 AS BIGINT), CAST('card' AS TEXT), CAST(-1 AS BIGINT), account.balance, account.balance, CAST('transfer' AS TEXT), CAST('转账给 someone' AS TEXT), CAST(:now AS BIGINT) FROM (SELECT 1) AS one LEFT JOIN account ON true WHERE NOT coffer_refuse_if(account.id IS NULL, 'INTERNAL') RETURNING account_id, balance_after;
WITH account AS (UPDATE accounts SET balance = balance + CAST(1 AS BIGINT) WHERE user_id = :b1 AND kind = 'card' AND asset = 'CNY' AND product = '' AND lot = 0 RETURNING id, balance) INSERT INTO entries (tx_id, account_id, user_id, account_kind, amount, balance_after, group_balance_after, method, details, created_at_ms) SELECT currval('transactions_id_seq'), account.id, CAST(:b1 AS BIGINT), CAST('card' AS TEXT), CAST(1 AS BIGINT), account.balance, account.balance, CAST('transfer' AS TEXT), CAST('转账给 someone' AS TEXT), CAST(:now AS BIGINT) FROM (SELECT 1) AS one LEFT JOIN account ON true WHERE NOT coffer_refuse_if(account.id IS NULL, 'INTERNAL') RETURNING account_id, balance_after;
INSERT INTO idempotency (user_id, key, request_hash, status, body, created_at_ms) VALUES (:a1, 'k' || :k1, '\x00'::bytea, 200, (SELECT CAST(CAST(balance / 100 AS TEXT) || '.' || substr(CAST(100 + balance % 100 AS TEXT), 2) AS BYTEA) FROM accounts WHERE user_id = :a1 AND kind = 'card' AND asset = 'CNY' AND product = '' AND lot = 0), :now);
SELECT coffer_refuse_if(pay_locked_until_ms > :now, 'PAY_LOCKED') FROM users WHERE id = :a2 FOR UPDATE;
UPDATE users SET pay_failures = 0, pay_locked_until_ms = 0 WHERE id = :a2 AND pay_failures > 0;
INSERT INTO spend_days (user_id, day, spent, limit_fen) VALUES (:a2, '2026-12-06', 1, 5000000) ON CONFLICT (user_id, day) DO UPDATE SET spent = spend_days.spent + excluded.spent, limit_fen = excluded.limit_fen;
INSERT INTO transactions (user_id, kind, memo, created_at_ms) VALUES (:a2, 'transfer', '', :now) RETURNING id;
WITH account AS (UPDATE accounts SET balance = balance + CAST(-1 AS BIGINT) WHERE user_id = :a2 AND kind = 'card' AND asset = 'CNY' AND product = '' AND lot = 0 RETURNING id, balance) INSERT INTO entries (tx_id, account_id, user_id, account_kind, amount, balance_after, group_balance_after, method, details, created_at_ms) SELECT currval('transactions_id_seq'), account.id, CAST(:a2 AS BIGINT), CAST('card' AS TEXT), CAST(-1 AS BIGINT), account.balance, account.balance, CAST('transfer' AS TEXT), CAST('转账给 someone' AS TEXT), CAST(:now AS BIGINT) FROM (SELECT 1) AS one LEFT JOIN account ON true WHERE NOT coffer_refuse_if(account.id IS NULL, 'INTERNAL') RETURNING account_id, balance_after;
WITH account AS (UPDATE accounts SET balance = balance + CAST(1 AS BIGINT) WHERE user_id = :b2 AND kind = 'card' AND asset = 'CNY' AND product = '' AND lot = 0 RETURNING id, balance) INSERT INTO entries (tx_id, account_id, user_id, account_kind, amount, balance_after, group_balance_after, method, details, created_at_ms) SELECT currval('transactions_id_seq'), account.id, CAST(:b2 AS BIGINT), CAST('card' AS TEXT), CAST(1 AS BIGINT), account.balance, account.balance, CAST('transfer' AS TEXT), CAST('转账给 someone' AS TEXT), CAST(:now AS BIGINT) FROM (SELECT 1) AS one LEFT JOIN account ON true WHERE NOT coffer_refuse_if(account.id IS NULL, 'INTERNAL') RETURNING account_id, balance_after;
INSERT INTO idempotency (user_id, key, request_hash, status, body, created_at_ms) VALUES (:a2, 'k' || :k2, '\x00'::bytea, 200, (SELECT CAST(CAST(balance / 100 AS TEXT) || '.' || substr(CAST(100 + balance % 100 AS TEXT), 2) AS BYTEA) FROM accounts WHERE user_id = :a2 AND kind = 'card' AND asset = 'CNY' AND product = '' AND lot = 0), :now);
SELECT coffer_refuse_if(pay_locked_until_ms > :now, 'PAY_LOCKED') FROM users WHERE id = :a3 FOR UPDATE;
UPDATE users SET pay_failures = 0, pay_locked_until_ms = 0 WHERE id = :a3 AND pay_failures > 0;
INSERT INTO spend_days (user_id, day, spent, limit_fen) VALUES (:a3, '2026-12-06', 1, 5000000) ON CONFLICT (user_id, day) DO UPDATE SET spent = spend_days.spent + excluded.spent, limit_fen = excluded.limit_fen;
INSERT INTO transactions (user_id, kind, memo, created_at_ms) VALUES (:a3, 'transfer', '', :now) RETURNING id;
WITH account AS (UPDATE accounts SET balance = balance + CAST(-1 AS BIGINT) WHERE user_id = :a3 AND kind = 'card' AND asset = 'CNY' AND product = '' AND lot = 0 RETURNING id, balance) INSERT INTO entries (tx_id, account_id, user_id, account_kind, amount, balance_after, group_balance_after, method, details, created_at_ms) SELECT currval('transactions_id_seq'), account.id, CAST(:a3 AS BIGINT), CAST('card' AS TEXT), CAST(-1 AS BIGINT), account.balance, account.balance, CAST('transfer' AS TEXT), CAST('转账给 someone' AS TEXT), CAST(:now AS BIGINT) FROM (SELECT 1) AS one LEFT JOIN account ON true WHERE NOT coffer_refuse_if(account.id IS NULL, 'INTERNAL') RETURNING account_id, balance_after;
WITH account AS (UPDATE accounts SET balance = balance + CAST(1 AS BIGINT) WHERE user_id = :b3 AND kind = 'card' AND asset = 'CNY' AND product = '' AND lot = 0 RETURNING id, balance) INSERT INTO entries (tx_id, account_id, user_id, account_kind, amount, balance_after, group_balance_after, method, details, created_at_ms) SELECT currval('transactions_id_seq'), account.id, CAST(:b3 AS BIGINT), CAST('card' AS TEXT), CAST(1 AS BIGINT), account.balance, account.balance, CAST('transfer' AS TEXT), CAST('转账给 someone' AS TEXT), CAST(:now AS BIGINT) FROM (SELECT 1) AS one LEFT JOIN account ON true WHERE NOT coffer_refuse_if(account.id IS NULL, 'INTERNAL') RETURNING account_id, balance_after;
INSERT INTO idempotency (user_id, key, request_hash, status, body, created_at_ms) VALUES (:a3, 'k' || :k3, '\x00'::bytea, 200, (SELECT CAST(CAST(balance / 100 AS TEXT) || '.' || substr(CAST(100 + balance % 100 AS TEXT), 2) AS BYTEA) FROM accounts WHERE user_id = :a3 AND kind = 'card' AND asset = 'CNY' AND product = '' AND lot = 0), :now);
SELECT coffer_refuse_if(pay_locked_until_ms > :now, 'PAY_LOCKED') FROM users WHERE id = :a4 FOR UPDATE;
UPDATE users SET pay_failures = 0, pay_locked_until_ms = 0 WHERE id = :a4 AND pay_failures > 0;
INSERT INTO spend_days (user_id, day, spent, limit_fen) VALUES (:a4, '2026-12-06', 1, 5000000) ON CONFLICT (user_id, day) DO UPDATE SET spent = spend_days.spent + excluded.spent, limit_fen = excluded.limit_fen;
INSERT INTO transactions (user_id, kind, memo, created_at_ms) VALUES (:a4, 'transfer', '', :now) RETURNING id;
WITH account AS (UPDATE accounts SET balance = balance + CAST(-1 AS BIGINT) WHERE user_id = :a4 AND kind = 'card' AND asset = 'CNY' AND product = '' AND lot = 0 RETURNING id, balance) INSERT INTO entries (tx_id, account_id, user_id, account_kind, amount, balance_after, group_balance_after, method, details, created_at_ms) SELECT currval('transactions_id_seq'), account.id, CAST(:a4 AS BIGINT), CAST('card' AS TEXT), CAST(-1 AS BIGINT), account.balance, account.balance, CAST('transfer' AS TEXT), CAST('转账给 someone' AS TEXT), CAST(:now AS BIGINT) FROM (SELECT 1) AS one LEFT JOIN account ON true WHERE NOT coffer_refuse_if(account.id IS NULL, 'INTERNAL') RETURNING account_id, balance_after;
WITH account AS (UPDATE accounts SET balance = balance + CAST(1 AS BIGINT) WHERE user_id = :b4 AND kind = 'card' AND asset = 'CNY' AND product = '' AND lot = 0 RETURNING id, balance) INSERT INTO entries (tx_id, account_id, user_id, account_kind, amount, balance_after, group_balance_after, method, details, created_at_ms) SELECT currval('transactions_id_seq'), account.id, CAST(:b4 AS BIGINT), CAST('card' AS TEXT), CAST(1 AS BIGINT), account.balance, account.balance, CAST('transfer' AS TEXT), CAST('转账给 someone' AS TEXT), CAST(:now AS BIGINT) FROM (SELECT 1) AS one LEFT JOIN account ON true WHERE NOT coffer_refuse_if(account.id IS NULL, 'INTERNAL') RETURNING account_id, balance_after;
INSERT INTO idempotency (user_id, key, request_hash, status, body, created_at_ms) VALUES (:a4, 'k' || :k4, '\x00'::bytea, 200, (SELECT CAST(CAST(balance / 100 AS TEXT) || '.' || substr(CAST(100 + balance % 100 AS TEXT), 2) AS BYTEA) FROM accounts WHERE user_id = :a4 AND kind = 'card' AND asset = 'CNY' AND product = '' AND lot = 0), :now);
COMMIT;
\endpipeline
