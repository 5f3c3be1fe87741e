"""Lua scripts that make each session operation one atomic step in Redis.

They mirror :class:`~aiosessions.stores.memory.MemoryStore` line for line;
the conformance suite holds the two to the same behaviour. Every script
touches only ``KEYS[1]``, or a user index and its marks (``KEYS[1]`` and
``KEYS[2]``, which share a hash tag), so each works unchanged on Redis
Cluster. Times come from Redis's own ``TIME``, in Unix milliseconds.
"""

from __future__ import annotations

__all__ = [
    "CLONE",
    "CREATE",
    "DELETE_OWNED",
    "EXTEND",
    "INCR",
    "INDEX_MARK",
    "INDEX_READ",
    "INDEX_UPDATE",
    "POP",
    "READ",
    "RETIRE",
    "TOUCH",
    "UPDATE",
    "VALIDATE",
]

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
local h = redis.call('HMGET', KEYS[1], 'a', 'i', 'x', 'u', 'r')
if not h[1] then return 0 end
local deadline = tonumber(h[1])
if ARGV[1] ~= '' then
  local owner = ''
  if h[4] then owner = '=' .. h[4] end
  if owner ~= ARGV[2] or h[5] then return 0 end
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

# -- record lifecycle -------------------------------------------------------

# TOUCH without refresh, then the record as READ returns it.
VALIDATE = (
    _NOW
    + """
local h = redis.call('HMGET', KEYS[1], 'a', 'i')
if not h[1] then return false end
local deadline = tonumber(h[1])
if deadline <= now then
  redis.call('DEL', KEYS[1])
  return false
end
redis.call('HSET', KEYS[1], 'l', now)
if h[2] then
  redis.call('PEXPIRE', KEYS[1], math.min(deadline - now, tonumber(h[2])))
end
return {now, redis.call('PTTL', KEYS[1]), redis.call('HGETALL', KEYS[1])}
"""
)

# ARGV: grace_ms. Returns the record as it was, or false.
RETIRE = (
    _NOW
    + """
local h = redis.call('HMGET', KEYS[1], 'a', 'x', 'r')
if not h[1] or h[3] then return false end
if tonumber(h[1]) <= now then
  redis.call('DEL', KEYS[1])
  return false
end
local ttl = redis.call('PTTL', KEYS[1])
local before = redis.call('HGETALL', KEYS[1])
local grace = tonumber(ARGV[1])
if grace == 0 then
  redis.call('DEL', KEYS[1])
else
  local limit = now + grace
  local cap = limit
  if h[2] then cap = math.min(tonumber(h[2]), limit) end
  redis.call('HSET', KEYS[1], 'r', now, 'a', math.min(tonumber(h[1]), limit),
    'x', cap)
  if ttl > grace then redis.call('PEXPIRE', KEYS[1], grace) end
end
return {now, ttl, before}
"""
)

# ARGV: field, value, ... (with 'a', maybe 'i'). Returns 1 created, 0 not.
CLONE = (
    _NOW
    + """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local deadline, idle
for i = 1, #ARGV, 2 do
  if ARGV[i] == 'a' then deadline = tonumber(ARGV[i + 1]) end
  if ARGV[i] == 'i' then idle = tonumber(ARGV[i + 1]) end
end
if deadline <= now then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
redis.call('HSET', KEYS[1], 'l', now, 't', now)
local expiry = deadline - now
if idle then expiry = math.min(expiry, idle) end
redis.call('PEXPIRE', KEYS[1], expiry)
return 1
"""
)

POP = (
    _NOW
    + """
local ttl = redis.call('PTTL', KEYS[1])
if ttl == -2 then return false end
local fields = redis.call('HGETALL', KEYS[1])
redis.call('DEL', KEYS[1])
return {now, ttl, fields}
"""
)

# ARGV: user id. Returns 1 deleted, 0 someone else's, -1 missing.
DELETE_OWNED = """
local owner = redis.call('HGET', KEYS[1], 'u')
if owner == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return redis.call('EXISTS', KEYS[1]) - 1
"""

# -- user indexes (KEYS[1] the index, KEYS[2] its marks) ----------------------

# ARGV: '1' for due members only or '0', limit (0: all).
INDEX_READ = (
    _NOW
    + """
local limit = tonumber(ARGV[2])
local items
if ARGV[1] == '1' then
  if limit > 0 then
    items = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'WITHSCORES',
      'LIMIT', 0, limit)
  else
    items = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'WITHSCORES')
  end
else
  items = redis.call('ZRANGE', KEYS[1], 0, limit - 1, 'WITHSCORES')
end
return {now, redis.call('ZCARD', KEYS[1]), items}
"""
)

# ARGV: keep_ms, grow_ms, list_limit (0 none, -1 all), '1' to list due
# members only or '0', then the counts of add, recheck, recheck_due, discard
# and check, then add (member, ms)..., recheck (member, ms)..., recheck_due
# (member, ms)..., discard members..., check members... Returns {now, size,
# listed, removed, absent, marked}; listed, absent and marked describe the
# index as the script found it.
INDEX_UPDATE = (
    _NOW
    + """
local idx = KEYS[1]
local keep, grow, list_limit = tonumber(ARGV[1]), tonumber(ARGV[2]),
  tonumber(ARGV[3])
local counts = {}
for j = 1, 5 do counts[j] = tonumber(ARGV[4 + j]) end
local at = 10
local function pairs_of(n)
  local out = {}
  for _ = 1, n do
    out[#out + 1] = {ARGV[at], tonumber(ARGV[at + 1])}
    at = at + 2
  end
  return out
end
local function items_of(n)
  local out = {}
  for _ = 1, n do
    out[#out + 1] = ARGV[at]
    at = at + 1
  end
  return out
end
local adds, rechecks, dues = pairs_of(counts[1]), pairs_of(counts[2]),
  pairs_of(counts[3])
local discards, checks = items_of(counts[4]), items_of(counts[5])

local listed = {}
if list_limit ~= 0 then
  if ARGV[4] == '1' then
    if list_limit > 0 then
      listed = redis.call('ZRANGEBYSCORE', idx, '-inf', now, 'WITHSCORES',
        'LIMIT', 0, list_limit)
    else
      listed = redis.call('ZRANGEBYSCORE', idx, '-inf', now, 'WITHSCORES')
    end
  else
    local last = list_limit - 1
    if list_limit < 0 then last = -1 end
    listed = redis.call('ZRANGE', idx, 0, last, 'WITHSCORES')
  end
end
local absent, marked = {}, {}
for _, m in ipairs(checks) do
  if not redis.call('ZSCORE', idx, m) then absent[#absent + 1] = m end
  if #KEYS > 1 and redis.call('ZSCORE', KEYS[2], m) then
    marked[#marked + 1] = m
  end
end
for _, p in ipairs(adds) do redis.call('ZADD', idx, now + p[2], p[1]) end
for _, p in ipairs(rechecks) do
  redis.call('ZADD', idx, 'XX', now + p[2], p[1])
end
for _, p in ipairs(dues) do
  local score = redis.call('ZSCORE', idx, p[1])
  if score and tonumber(score) <= now then
    redis.call('ZADD', idx, 'XX', now + p[2], p[1])
  end
end
local removed = {}
for _, m in ipairs(discards) do
  if redis.call('ZREM', idx, m) == 1 then removed[#removed + 1] = m end
end

local size = redis.call('ZCARD', idx)
if size > 0 then
  local ttl = redis.call('PTTL', idx)
  if ttl == -1 then
    if keep > 0 then redis.call('PEXPIRE', idx, keep) end
  elseif math.max(ttl + grow, keep) > ttl then
    redis.call('PEXPIRE', idx, math.max(ttl + grow, keep))
  end
end
return {now, size, listed, removed, absent, marked}
"""
)

# ARGV: hold_ms, '1' to mark every member but ARGV[3] or '0' to mark the
# members that follow, then the members. Returns {now, size, marked pairs}.
INDEX_MARK = (
    _NOW
    + """
local hold = tonumber(ARGV[1])
local targets = {}
if ARGV[2] == '1' then
  for _, m in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
    if m ~= ARGV[3] then targets[#targets + 1] = m end
  end
else
  for j = 4, #ARGV do targets[#targets + 1] = ARGV[j] end
end
local listed = {}
for _, m in ipairs(targets) do
  redis.call('ZADD', KEYS[2], now, m)
  local score = redis.call('ZSCORE', KEYS[1], m)
  if score then
    listed[#listed + 1] = m
    listed[#listed + 1] = score
  end
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - hold)
if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('PEXPIRE', KEYS[2], hold) end
return {now, redis.call('ZCARD', KEYS[1]), listed}
"""
)
