-- lock.lua: take many locks in one call, each only if free (SET NX PX); the consumer's per-pair locks.
--
-- KEYS     the lock keys, all in one hash slot (the pair locks of one coupon share its {id} tag)
-- ARGV[1]  the holder's token
-- ARGV[2]  time to live, milliseconds (a crashed holder's locks expire)
--
-- Returns one flag per key, in KEYS order: 1 taken now, 0 held by someone else (left untouched).

local taken = {}
for i = 1, #KEYS do
  if redis.call('SET', KEYS[i], ARGV[1], 'NX', 'PX', ARGV[2]) then
    taken[i] = 1
  else
    taken[i] = 0
  end
end
return taken
