-- rate_limit.lua: one fixed-window counter, optionally guarded by a "deleted account" marker.
-- Every key of one call shares one hash tag ({user:<id>}, {ip:<addr>} or {login:<digest>}), so the call
-- runs on one Redis Cluster slot.
--
-- KEYS[1]  rl:{<tag>}:requests|attempts   counter of the current window (expires with the window)
-- KEYS[2]  rl:{user:<id>}:deleted         optional: when present, the account is deleted
-- ARGV[1]  limit: requests allowed per window (0 = no limit, only the marker is checked)
-- ARGV[2]  window length in milliseconds
--
-- Returns {code, retry_after_ms}: 0 allowed, 1 over the limit (retry after the window's remaining time),
-- 2 account deleted. The codes are mapped to coupon.adapters.rate_limit.LimitOutcome; keep both in step.

if KEYS[2] and redis.call('EXISTS', KEYS[2]) == 1 then
  return {2, 0}
end
local limit = tonumber(ARGV[1])
if limit <= 0 then
  return {0, 0}
end
local count = redis.call('INCR', KEYS[1])
if count == 1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
if count > limit then
  local ttl = redis.call('PTTL', KEYS[1])
  if ttl < 0 then
    -- A counter without expiry would block forever: give it a window.
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    ttl = tonumber(ARGV[2])
  end
  return {1, ttl}
end
return {0, 0}
