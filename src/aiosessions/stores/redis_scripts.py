"""Lua scripts that make each session operation one atomic step in Redis.

They mirror :class:`~aiosessions.stores.memory.MemoryStore` line for line;
the conformance suite holds the two to the same behaviour. Every script
touches only ``KEYS[1]``, so each works unchanged on Redis Cluster. Times
come from Redis's own ``TIME``, in Unix milliseconds.
"""

from __future__ import annotations

__all__ = ["CREATE", "EXTEND", "INCR", "READ", "TOUCH", "UPDATE"]

_NOW = """
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

# ARGV: lifetime_ms, idle_ms or '', cap_ms or '', then field, value, ...
CREATE = (
    _NOW
    + """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local deadline = now + tonumber(ARGV[1])
local args = {'c', now, 'l', now}
if ARGV[3] ~= '' then
  local cap = now + tonumber(ARGV[3])
  args[#args + 1] = 'x'
  args[#args + 1] = cap
  if cap < deadline then deadline = cap end
end
args[#args + 1] = 'a'
args[#args + 1] = deadline
local expiry = deadline - now
if ARGV[2] ~= '' then
  args[#args + 1] = 'i'
  args[#args + 1] = ARGV[2]
  expiry = math.min(expiry, tonumber(ARGV[2]))
end
for i = 4, #ARGV do args[#args + 1] = ARGV[i] end
redis.call('HSET', KEYS[1], unpack(args))
redis.call('PEXPIRE', KEYS[1], expiry)
return 1
"""
)

# ARGV: refresh_ms or '', then when refreshing the owner ('' for none, or
# '=' followed by the user id) and field, value, ... to merge in.
TOUCH = (
    _NOW
    + """
local h = redis.call('HMGET', KEYS[1], 'a', 'i', 'x', 'u')
if not h[1] then return 0 end
local deadline = tonumber(h[1])
if ARGV[1] ~= '' then
  local owner = ''
  if h[4] then owner = '=' .. h[4] end
  if owner ~= ARGV[2] then return 0 end
  deadline = now + tonumber(ARGV[1])
  if h[3] then deadline = math.min(deadline, tonumber(h[3])) end
end
if deadline <= now then
  redis.call('DEL', KEYS[1])
  return 0
end
if ARGV[1] ~= '' then
  redis.call('HSET', KEYS[1], 'a', deadline, 'l', now)
  if #ARGV > 2 then redis.call('HSET', KEYS[1], unpack(ARGV, 3)) end
else
  redis.call('HSET', KEYS[1], 'l', now)
end
if ARGV[1] ~= '' or h[2] then
  local expiry = deadline - now
  if h[2] then expiry = math.min(expiry, tonumber(h[2])) end
  redis.call('PEXPIRE', KEYS[1], expiry)
end
return 1
"""
)

READ = (
    _NOW
    + """
local ttl = redis.call('PTTL', KEYS[1])
if ttl == -2 then return false end
return {now, ttl, redis.call('HGETALL', KEYS[1])}
"""
)

# ARGV: '1' to replace custom fields or '0' to merge, the count n of custom
# fields to remove, those n names, then field, value, ...
UPDATE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local n = tonumber(ARGV[2])
local drop = {}
if ARGV[1] == '1' then
  for _, name in ipairs(redis.call('HKEYS', KEYS[1])) do
    if string.sub(name, 1, 1) == ':' then drop[#drop + 1] = name end
  end
else
  for i = 3, n + 2 do
    if string.sub(ARGV[i], 1, 1) == ':' then drop[#drop + 1] = ARGV[i] end
  end
end
if #drop > 0 then redis.call('HDEL', KEYS[1], unpack(drop)) end
if #ARGV > n + 2 then redis.call('HSET', KEYS[1], unpack(ARGV, n + 3)) end
return 1
"""

# ARGV: field, amount. Returns {0} missing, {1, value} done, {2, error}.
INCR = """
if redis.call('EXISTS', KEYS[1]) == 0 then return {0} end
local r = redis.pcall('HINCRBY', KEYS[1], ARGV[1], ARGV[2])
if type(r) == 'table' and r.err then return {2, r.err} end
return {1, redis.call('HGET', KEYS[1], ARGV[1])}
"""

# ARGV: add_ms, longest ms from now. Returns the ms left before expiry, or -2
# when missing.
EXTEND = (
    _NOW
    + """
local h = redis.call('HMGET', KEYS[1], 'a', 'i', 'x')
if not h[1] then return -2 end
local deadline = math.min(tonumber(h[1]) + tonumber(ARGV[1]), now + tonumber(ARGV[2]))
if h[3] then deadline = math.min(deadline, tonumber(h[3])) end
local expiry = deadline - now
if expiry <= 0 then
  redis.call('DEL', KEYS[1])
  return -2
end
redis.call('HSET', KEYS[1], 'a', deadline, 'l', now)
if h[2] then expiry = math.min(expiry, tonumber(h[2])) end
redis.call('PEXPIRE', KEYS[1], expiry)
return expiry
"""
)
