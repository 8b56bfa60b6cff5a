-- batch-set-based.sql cut down to a lower bound of its cost: no running balances, no explicit
-- ids, constant idempotency bodies. Not a correct batch; only what sets could save at most.
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
SELECT coffer_refuse_if(pay_locked_until_ms > :now, 'PAY_LOCKED') FROM users WHERE id = ANY(ARRAY[:a1,:a2,:a3,:a4]::bigint[]);
UPDATE users SET pay_failures = 0, pay_locked_until_ms = 0 WHERE id = ANY(ARRAY[:a1,:a2,:a3,:a4]::bigint[]) AND pay_failures > 0;
INSERT INTO spend_days (user_id, day, spent, limit_fen) SELECT u, '2026-12-06', sum(1), 5000000 FROM unnest(ARRAY[:a1,:a2,:a3,:a4]::bigint[]) u GROUP BY u ON CONFLICT (user_id, day) DO UPDATE SET spent = spend_days.spent + excluded.spent, limit_fen = excluded.limit_fen;
WITH p AS (SELECT * FROM unnest(ARRAY[1,2,3,4]::int[], ARRAY[:a1,:a2,:a3,:a4]::bigint[], ARRAY[:b1,:b2,:b3,:b4]::bigint[]) AS p(ord, payer, payee)), t AS (INSERT INTO transactions (user_id, kind, memo, created_at_ms) SELECT payer, 'transfer', '', :now FROM p ORDER BY ord RETURNING id, user_id), legs AS (SELECT ord, payer AS u, -1::bigint AS delta FROM p UNION ALL SELECT ord, payee, 1 FROM p), agg AS (SELECT u, sum(delta) d FROM legs GROUP BY u), upd AS (UPDATE accounts a SET balance = a.balance + agg.d FROM agg WHERE a.user_id = agg.u AND a.kind = 'card' AND a.asset = 'CNY' AND a.product = '' AND a.lot = 0 RETURNING a.id, a.user_id, a.balance, agg.d) INSERT INTO entries (tx_id, account_id, user_id, account_kind, amount, balance_after, group_balance_after, method, details, created_at_ms) SELECT (SELECT min(id) FROM t) + legs.ord - 1, upd.id, legs.u, 'card', legs.delta, upd.balance - upd.d + sum(legs.delta) OVER (PARTITION BY legs.u ORDER BY legs.ord, legs.delta), 0, 'transfer', '转账给 someone', :now FROM legs JOIN upd ON upd.user_id = legs.u ORDER BY legs.ord, legs.delta RETURNING tx_id, account_id, balance_after;
INSERT INTO idempotency (user_id, key, request_hash, status, body, created_at_ms) SELECT u, 'k' || k, '\x00'::bytea, 200, '1.00'::bytea, :now FROM unnest(ARRAY[:a1,:a2,:a3,:a4]::bigint[], ARRAY[:k1,:k2,:k3,:k4]::bigint[]) AS x(u, k);
COMMIT;
\endpipeline
