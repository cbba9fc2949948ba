-- reserve.lua: the issue gate. One atomic decision per request; a rejection changes nothing.
-- Several requests for the same coupon may be decided in one call (the API groups concurrent ones);
-- they are decided one after the other, in ARGV order, exactly as separate calls would be.
--
-- Every request carries a token (its Idempotency-Key, or a fresh one) and the event id its Kafka record will
-- have. The reservation remembers both, so running the same request again (the API's own retry after a Redis
-- timeout, redis-py's cluster retry, a client's retry with the same key) returns the same decision, rank and
-- event id, never DUPLICATE.
--
-- KEYS[1]  coupon:{id}:meta          hash: total, starts (epoch ms), ends (epoch ms), status
-- KEYS[2]  coupon:{id}:issued        counter of reservations
-- KEYS[3]  coupon:{id}:participants  sorted set: member = user id, score = arrival rank
-- KEYS[4]  coupon:{id}:holds         hash: user id -> "<state>|<token>|<event id>"; states: P published, not yet
--                                    acknowledged; U the API gave up waiting (outcome unknown); C confirmed (the
--                                    broker acknowledged); R being settled by the sweeper. A participant without a
--                                    hold was rebuilt from the DB and counts as confirmed.
-- KEYS[5]  coupon:{id}:unconfirmed   sorted set: user id -> last time (ms) a request touched its P/U/R hold
-- ARGV[1]  adopt_after_ms: a P hold older than this belongs to a request that has finished (its caller was
--          answered), so a new request of that user may take it over instead of being told DUPLICATE
-- ARGV[2..] one (user id, token, event id) triple per request
--
-- Returns {code1, rank1, event1, code2, ...}, one triple per request: 0 accepted (publish event), 1 duplicate,
-- 2 sold out, 3 not started, 4 ended, 5 disabled, 6 meta missing (the caller rebuilds the gate from the DB and
-- retries once), 7 being settled (the outcome of an earlier request is not known yet), 8 replayed (this very
-- request was already confirmed: answer it again, publish nothing). The codes are mapped to
-- coupon.adapters.gate.GateOutcome; keep both in step.

local out = {}
local n = (#ARGV - 1) / 3
local meta = redis.call('HMGET', KEYS[1], 'total', 'starts', 'ends', 'status')
if not meta[1] then
  for i = 1, n do
    out[#out + 1] = 6
    out[#out + 1] = 0
    out[#out + 1] = ''
  end
  return out
end

local total = tonumber(meta[1])
-- Redis' own clock, so every API process judges the window (and a hold's age) by the same time.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local adopt_after = tonumber(ARGV[1])
local closed = 0
if meta[4] ~= 'ACTIVE' then
  closed = 5
elseif now < tonumber(meta[2]) then
  closed = 3
elseif now >= tonumber(meta[3]) then
  closed = 4
end
local issued = tonumber(redis.call('GET', KEYS[2]) or '0')

for i = 1, n do
  local user, token, event = ARGV[3 * i - 1], ARGV[3 * i], ARGV[3 * i + 1]
  local code, rank = 0, 0
  local existing = redis.call('ZSCORE', KEYS[3], user)
  if existing then
    rank = tonumber(existing)
    local hold = redis.call('HGET', KEYS[4], user)
    if not hold then
      code = 1
    else
      local state, held_token, held_event = string.match(hold, '^(%a)|([^|]*)|(.*)$')
      event = held_event
      if state == 'R' then
        code = 7
      elseif state == 'C' then
        code = (held_token == token) and 8 or 1
      else
        local touched = tonumber(redis.call('ZSCORE', KEYS[5], user) or '0')
        if held_token == token or state == 'U' or now - touched >= adopt_after then
          redis.call('HSET', KEYS[4], user, 'P|' .. token .. '|' .. held_event)
          redis.call('ZADD', KEYS[5], now, user)
        else
          code = 1
        end
      end
    end
  elseif closed ~= 0 then
    code = closed
  elseif issued >= total then
    code = 2
  else
    issued = redis.call('INCR', KEYS[2])
    rank = issued
    redis.call('ZADD', KEYS[3], 'NX', rank, user)
    redis.call('HSET', KEYS[4], user, 'P|' .. token .. '|' .. event)
    redis.call('ZADD', KEYS[5], now, user)
  end
  out[#out + 1] = code
  out[#out + 1] = rank
  out[#out + 1] = (code == 0 or code == 8 or code == 7) and event or ''
end
return out
