-- batch-per-payment.sql with the four payments' statements as sets: one statement for the
-- pay locks, one for the wrong passwords, one for the days' spending, one for the transactions,
-- the cards' balances (running, a payment after another), the entries (ids in the payments'
-- order) and the idempotency records (bodies from the running balance). A cost emulation only:
-- it is not checked against the per-payment statements (see BENCHMARKS.md).
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
SELECT coffer_refuse_if(bool_or(u.pay_locked_until_ms > x.now_ms), 'PAY_LOCKED') FROM users u JOIN unnest(ARRAY[:a1,:a2,:a3,:a4]::bigint[], ARRAY[:now,:now,:now,:now]::bigint[]) AS x(id, now_ms) ON u.id = x.id;
UPDATE users SET pay_failures = 0, pay_locked_until_ms = 0 WHERE id = ANY(ARRAY[:a1,:a2,:a3,:a4]::bigint[]) AND pay_failures > 0;
INSERT INTO spend_days (user_id, day, spent, limit_fen) SELECT user_id, day, sum(amount), max(limit_fen) FROM unnest(ARRAY[:a1,:a2,:a3,:a4]::bigint[], ARRAY['2026-12-06','2026-12-06','2026-12-06','2026-12-06']::text[], ARRAY[1,1,1,1]::bigint[], ARRAY[5000000,5000000,5000000,5000000]::bigint[]) AS x(user_id, day, amount, limit_fen) GROUP BY user_id, day ON CONFLICT (user_id, day) DO UPDATE SET spent = spend_days.spent + excluded.spent, limit_fen = excluded.limit_fen;
WITH c AS (SELECT * FROM unnest(ARRAY[1,2,3,4,5,6,7,8]::int[], ARRAY[1,1,2,2,3,3,4,4]::int[], ARRAY[-1,1,-1,1,-1,1,-1,1]::bigint[], ARRAY[:a1,:b1,:a2,:b2,:a3,:b3,:a4,:b4]::bigint[], ARRAY['card','card','card','card','card','card','card','card']::text[], ARRAY['CNY','CNY','CNY','CNY','CNY','CNY','CNY','CNY']::text[], ARRAY['','','','','','','','']::text[], ARRAY[0,0,0,0,0,0,0,0]::bigint[], ARRAY['transfer','transfer','transfer','transfer','transfer','transfer','transfer','transfer']::text[], ARRAY['转账给 someone','转账给 someone','转账给 someone','转账给 someone','转账给 someone','转账给 someone','转账给 someone','转账给 someone']::text[]) AS c(seq, item, delta, user_id, kind, asset, product, lot, method, details)), sums AS (SELECT user_id, kind, asset, product, lot, sum(delta) AS total, count(*) AS n FROM c GROUP BY user_id, kind, asset, product, lot), acc AS (UPDATE accounts a SET balance = a.balance + s.total FROM sums s WHERE a.user_id = s.user_id AND a.kind = s.kind AND a.asset = s.asset AND a.product = s.product AND a.lot = s.lot RETURNING a.id, a.user_id, a.kind, a.asset, a.product, a.lot, a.balance - s.total AS before), tx AS (SELECT item, nextval('transactions_id_seq') AS id FROM (SELECT * FROM unnest(ARRAY[1,2,3,4]::int[]) AS i(item) ORDER BY item) AS i), tins AS (INSERT INTO transactions (id, user_id, kind, memo, created_at_ms) OVERRIDING SYSTEM VALUE SELECT tx.id, x.user_id, 'transfer', '', :now FROM tx JOIN unnest(ARRAY[1,2,3,4]::int[], ARRAY[:a1,:a2,:a3,:a4]::bigint[]) AS x(item, user_id) ON x.item = tx.item), run AS (SELECT c.seq, c.item, tx.id AS tx_id, acc.id AS account_id, c.user_id, c.kind, c.delta, c.method, c.details, acc.before + sum(c.delta) OVER (PARTITION BY acc.id ORDER BY c.seq) AS after FROM c JOIN acc USING (user_id, kind, asset, product, lot) JOIN tx ON tx.item = c.item), e AS (SELECT nextval('entries_id_seq') AS id, r.* FROM (SELECT * FROM run ORDER BY seq) AS r), eins AS (INSERT INTO entries (id, tx_id, account_id, user_id, account_kind, amount, balance_after, group_balance_after, method, details, created_at_ms) OVERRIDING SYSTEM VALUE SELECT id, tx_id, account_id, user_id, kind, delta, after, after, method, details, :now FROM e), idem AS (INSERT INTO idempotency (user_id, key, request_hash, status, body, created_at_ms) SELECT x.user_id, 'k' || x.k, '\x00'::bytea, 200, CAST(CAST(r.after / 100 AS TEXT) || '.' || substr(CAST(100 + r.after % 100 AS TEXT), 2) AS BYTEA), :now FROM unnest(ARRAY[1,2,3,4]::int[], ARRAY[:a1,:a2,:a3,:a4]::bigint[], ARRAY[:k1,:k2,:k3,:k4]::bigint[]) AS x(item, user_id, k) JOIN run r ON r.item = x.item AND r.user_id = x.user_id AND r.delta < 0) SELECT e.seq, e.tx_id, e.account_id, e.after, coffer_refuse_if(e.after < 0 OR (SELECT count(*) FROM acc) <> (SELECT count(*) FROM sums), 'SHORTFALL') FROM e ORDER BY e.seq;
COMMIT;
\endpipeline
