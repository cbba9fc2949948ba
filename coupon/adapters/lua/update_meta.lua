-- update_meta.lua: an admin change of a coupon reaches its gate, atomically with what reserve.lua reads.
-- The caller holds the coupon's DB row lock (SELECT ... FOR UPDATE) and commits its DB change after this call,
-- so every writer of the meta (PATCH, its undo, the gate rebuild) runs one at a time, in DB commit order.
--
-- KEYS[1]  coupon:{id}:meta    hash: total, starts (epoch ms), ends (epoch ms), status (the fields reserve.lua reads)
-- KEYS[2]  coupon:{id}:issued  counter of reservations (every hold, confirmed or not)
-- ARGV[1]  'guard': refuse a total below the counter; 'force': write whatever the counter says (the undo of a
--          change whose DB commit failed puts the DB's values back, even when reservations outgrew them meanwhile)
-- ARGV[2]  total
-- ARGV[3]  starts, epoch ms
-- ARGV[4]  ends, epoch ms
-- ARGV[5]  status (ACTIVE | DISABLED)
--
-- Returns {code, reserved}: 0 written; 1 the meta hash is missing, nothing written (the next request rebuilds the
-- gate from the DB, which holds the new values once committed); 2 the new total is below the reservations,
-- nothing written. `reserved` is the counter's value. The codes are mapped to coupon.adapters.gate.MetaUpdate;
-- keep both in step.

if redis.call('EXISTS', KEYS[1]) == 0 then
  return {1, 0}
end
local reserved = tonumber(redis.call('GET', KEYS[2]) or '0')
if ARGV[1] == 'guard' and tonumber(ARGV[2]) < reserved then
  return {2, reserved}
end
redis.call('HSET', KEYS[1], 'total', ARGV[2], 'starts', ARGV[3], 'ends', ARGV[4], 'status', ARGV[5])
return {0, reserved}
