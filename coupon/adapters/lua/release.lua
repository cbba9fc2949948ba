-- release.lua: undo exactly one reservation after a failed publish.
--
-- KEYS[1]  coupon:{id}:issued        counter of reservations
-- KEYS[2]  coupon:{id}:participants  sorted set of participants
-- ARGV[1]  user id
--
-- Returns 1 if the user's reservation was released, 0 if there was none (nothing changes).

if redis.call('ZREM', KEYS[2], ARGV[1]) == 1 then
  local left = redis.call('DECR', KEYS[1])
  if left < 0 then
    redis.call('SET', KEYS[1], 0)
  end
  return 1
end
return 0
