-- unlock.lua: release locks only where we still hold them (compare-and-delete), one or many in one call.
--
-- KEYS     the lock keys; several keys must share one hash slot (e.g. all pair locks of one coupon)
-- ARGV[1]  the holder's token
--
-- Returns how many were deleted; a lock that had expired or belongs to someone else is left alone.

local released = 0
for i = 1, #KEYS do
  if redis.call('GET', KEYS[i]) == ARGV[1] then
    released = released + redis.call('DEL', KEYS[i])
  end
end
return released
