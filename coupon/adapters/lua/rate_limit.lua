-- rate_limit.lua: fixed-window counters, each guarded by a marker, for one or many groups in one call.
-- A group is three keys and two arguments. Every key of one call shares one Redis Cluster slot:
-- coupon.adapters.lua.run_grouped puts the groups of one slot into one call (on a single Redis, all of them),
-- so a batch of requests costs one script run instead of one per request.
--
-- KEYS[3i-2]  rl:{<tag>}:requests|attempts   group i's counter of the current window (expires with the window)
-- KEYS[3i-1]  rl:{<tag>}:deleted|blocked     group i's marker: when present, refuse. Only users' deletion
--                                           markers are ever written; address and login markers never are.
-- KEYS[3i]    rl:{user:<id>}:revoked:<jti>   group i's token marker: the access token was revoked (logout).
--                                           Address and login groups repeat their marker here.
-- ARGV[2i-1]  group i's limit: requests allowed per window (0 = no limit, only the marker is checked)
-- ARGV[2i]    group i's window length in milliseconds
--
-- Returns {code_1, retry_after_ms_1, code_2, retry_after_ms_2, ...}, one pair per group, in order:
-- 0 allowed, 1 over the limit (retry after the window's remaining time), 2 account deleted, 3 token revoked.
-- The codes are mapped to coupon.adapters.rate_limit.LimitOutcome; keep both in step.
-- Groups run in order, so the same counter twice in one call counts twice, exactly as two calls would.

local function decide(counter, marker, token_marker, limit, window_ms)
  if redis.call('EXISTS', marker) == 1 then
    return 2, 0
  end
  if token_marker ~= marker and redis.call('EXISTS', token_marker) == 1 then
    return 3, 0
  end
  if limit <= 0 then
    return 0, 0
  end
  local count = redis.call('INCR', counter)
  if count == 1 then
    redis.call('PEXPIRE', counter, window_ms)
  end
  if count > limit then
    local ttl = redis.call('PTTL', counter)
    if ttl < 0 then
      -- A counter without expiry would block forever: give it a window.
      redis.call('PEXPIRE', counter, window_ms)
      ttl = tonumber(window_ms)
    end
    return 1, ttl
  end
  return 0, 0
end

local out = {}
for i = 1, #KEYS / 3 do
  local code, ttl = decide(KEYS[3 * i - 2], KEYS[3 * i - 1], KEYS[3 * i], tonumber(ARGV[2 * i - 1]), ARGV[2 * i])
  out[2 * i - 1] = code
  out[2 * i] = ttl
end
return out
