-- mark_lost.lua: a request found the gate's meta missing (Redis emptied, restarted without its data, the gate
-- retired): remember when, once, so every API process waits out the same in-flight window before a rebuild.
--
-- KEYS[1]  coupon:{id}:meta   hash: the gate's meta (see reserve.lua)
-- KEYS[2]  coupon:{id}:lost   string: Redis time (epoch ms) the loss was first seen
-- ARGV[1]  how long (ms) the mark is kept: past it, a rebuild that never happened is started from a new mark
--
-- Returns {lost_at, now} in epoch ms by Redis' clock; lost_at is -1 when the meta exists (rebuilt meanwhile:
-- decide again, nothing to wait for). Writes only the mark, and only if it is missing.

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if redis.call('EXISTS', KEYS[1]) == 1 then
  return {-1, now}
end
redis.call('SET', KEYS[2], now, 'NX', 'PX', ARGV[1])
return {tonumber(redis.call('GET', KEYS[2])), now}
