-- reserve.lua: the issue gate. One atomic decision per request; a rejection changes nothing.
--
-- KEYS[1]  coupon:{id}:meta          hash: total, starts (epoch ms), ends (epoch ms), status
-- KEYS[2]  coupon:{id}:issued        counter of reservations
-- KEYS[3]  coupon:{id}:participants  sorted set: member = user id, score = arrival rank
-- ARGV[1]  user id
--
-- Returns {code, rank}: 0 accepted, 1 duplicate, 2 sold out, 3 not started, 4 ended,
-- 5 disabled, 6 meta missing (the caller rebuilds the gate from the DB and retries once).
-- The codes are mapped to coupon.adapters.gate.GateOutcome; keep both in step.

local meta = redis.call('HMGET', KEYS[1], 'total', 'starts', 'ends', 'status')
if not meta[1] then
  return {6, 0}
end

local existing = redis.call('ZSCORE', KEYS[3], ARGV[1])
if existing then
  return {1, tonumber(existing)}
end

if meta[4] ~= 'ACTIVE' then
  return {5, 0}
end

-- Redis' own clock, so every API process judges the window by the same time.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if now < tonumber(meta[2]) then
  return {3, 0}
end
if now >= tonumber(meta[3]) then
  return {4, 0}
end

local issued = tonumber(redis.call('GET', KEYS[2]) or '0')
if issued >= tonumber(meta[1]) then
  return {2, 0}
end

local rank = redis.call('INCR', KEYS[2])
redis.call('ZADD', KEYS[3], 'NX', rank, ARGV[1])
return {0, rank}
