-- release.lua: move reservations along their life cycle, or undo them; one or many in one call.
--
-- KEYS[1]  coupon:{id}:issued        counter of reservations
-- KEYS[2]  coupon:{id}:participants  sorted set of participants
-- KEYS[3]  coupon:{id}:holds         hash: user id -> "<state>|<token>|<event id>" (see reserve.lua)
-- KEYS[4]  coupon:{id}:unconfirmed   sorted set: user id -> last touch (ms) of an unconfirmed hold
-- KEYS[5]  coupon:{id}:meta          the gate's meta: missing when Redis lost the gate
-- ARGV[1]  what to do with each hold:
--            confirm    P or U -> C     (the broker acknowledged the record); 1 also when already C, and 0 for R:
--                                       the API answers 202 only on a 1, so the sweeper never fences a 202.
--                                       No hold at all: 1 when Redis lost the gate (meta missing: its rebuild waits
--                                       until this acknowledged record is on the topic, and counts it) or rebuilt it
--                                       with this user as a participant (counted); else 0 (the sweeper released it)
--            restore    R -> C          (the sweeper found the request's row in the DB)
--            unconfirm  P -> U          (the API gave up waiting: anyone of that user may take it over)
--            revoke     P or U -> R, only if not touched after ARGV[2] (the sweeper starts to settle it)
--            release    any state but C: the reservation is undone (counter, participant and hold)
-- ARGV[2]  revoke's cutoff (epoch ms); ignored by the other modes
-- ARGV[3..] one (user id, event id) pair per hold: a hold is changed only while it still carries that event,
--           so an old caller can never touch a newer reservation of the same user
--
-- Returns one flag per pair, in order: 1 changed, 0 left as it was.

local mode, cutoff = ARGV[1], tonumber(ARGV[2])
local out = {}
for i = 3, #ARGV, 2 do
  local user, event = ARGV[i], ARGV[i + 1]
  local changed = 0
  local hold = redis.call('HGET', KEYS[3], user)
  if not hold then
    if mode == 'confirm' and (redis.call('EXISTS', KEYS[5]) == 0 or redis.call('ZSCORE', KEYS[2], user)) then
      changed = 1
    end
  else
    local state, token, held_event = string.match(hold, '^(%a)|([^|]*)|(.*)$')
    if held_event == event then
      if (mode == 'confirm' and (state == 'P' or state == 'U')) or (mode == 'restore' and state == 'R') then
        redis.call('HSET', KEYS[3], user, 'C|' .. token .. '|' .. event)
        redis.call('ZREM', KEYS[4], user)
        changed = 1
      elseif mode == 'confirm' and state == 'C' then
        changed = 1
      elseif mode == 'unconfirm' and state == 'P' then
        redis.call('HSET', KEYS[3], user, 'U|' .. token .. '|' .. event)
        changed = 1
      elseif mode == 'revoke' and (state == 'P' or state == 'U')
          and tonumber(redis.call('ZSCORE', KEYS[4], user) or '0') <= cutoff then
        redis.call('HSET', KEYS[3], user, 'R|' .. token .. '|' .. event)
        changed = 1
      elseif mode == 'release' and state ~= 'C' then
        redis.call('HDEL', KEYS[3], user)
        redis.call('ZREM', KEYS[4], user)
        if redis.call('ZREM', KEYS[2], user) == 1 and redis.call('DECR', KEYS[1]) < 0 then
          redis.call('SET', KEYS[1], 0)
        end
        changed = 1
      end
    end
  end
  out[#out + 1] = changed
end
return out
