-- The frame of a batch of four transfers alone: BEGIN, the lock timeout, the users' and the
-- accounts' rows taken, COMMIT (which then flushes the row locks' WAL to disk).
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
COMMIT;
\endpipeline
