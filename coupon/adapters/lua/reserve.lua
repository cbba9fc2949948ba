-- reserve.lua: the issue gate. One atomic decision per request; a rejection changes nothing.
-- Several requests for the same coupon may be decided in one call (the API groups concurrent ones);
-- they are decided one after the other, in ARGV order, exactly as separate calls would be.
--
-- KEYS[1]  coupon:{id}:meta          hash: total, starts (epoch ms), ends (epoch ms), status
-- KEYS[2]  coupon:{id}:issued        counter of reservations
-- KEYS[3]  coupon:{id}:participants  sorted set: member = user id, score = arrival rank
-- ARGV     one user id per request
--
-- Returns {code1, rank1, code2, rank2, ...}, one pair per user id: 0 accepted, 1 duplicate, 2 sold out,
-- 3 not started, 4 ended, 5 disabled, 6 meta missing (the caller rebuilds the gate from the DB and
-- retries once). The codes are mapped to coupon.adapters.gate.GateOutcome; keep both in step.

local out = {}
local meta = redis.call('HMGET', KEYS[1], 'total', 'starts', 'ends', 'status')
if not meta[1] then
  for i = 1, #ARGV do
    out[#out + 1] = 6
    out[#out + 1] = 0
  end
  return out
end

local total = tonumber(meta[1])
-- Redis' own clock, so every API process judges the window by the same time.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local closed = 0
if meta[4] ~= 'ACTIVE' then
  closed = 5
elseif now < tonumber(meta[2]) then
  closed = 3
elseif now >= tonumber(meta[3]) then
  closed = 4
end
local issued = tonumber(redis.call('GET', KEYS[2]) or '0')

for i = 1, #ARGV do
  local code, rank = 0, 0
  local existing = redis.call('ZSCORE', KEYS[3], ARGV[i])
  if existing then
    code, rank = 1, tonumber(existing)
  elseif closed ~= 0 then
    code = closed
  elseif issued >= total then
    code = 2
  else
    issued = redis.call('INCR', KEYS[2])
    rank = issued
    redis.call('ZADD', KEYS[3], 'NX', rank, ARGV[i])
  end
  out[#out + 1] = code
  out[#out + 1] = rank
end
return out
