-- unlock.lua: release a lock only if we still hold it (compare-and-delete).
--
-- KEYS[1]  the lock key
-- ARGV[1]  the holder's token
--
-- Returns 1 if deleted, 0 if the lock had expired or belongs to someone else.

if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
