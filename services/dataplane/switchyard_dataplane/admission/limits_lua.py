"""The two Lua scripts of the Redis limiter: ADMIT (one EVALSHA before the upstream call)
and SETTLE (one after the answer, off the hot path).

ADMIT checks every rule of the call and, only if no enforced rule refuses, charges them
all: all-or-nothing, atomic across replicas. Rules:
- rate (rpm / tpm): a hash per counter, one field per sub-bucket (`bucket_ms` each, the
  window is `nbuckets` of them). The sum of the live buckets is the window's use; a call
  fits when use + amount <= limit. Stale buckets are deleted as they are read.
- concurrency: a sorted set of call ids scored by lease expiry (ms); expired leases
  (crashed replicas) are dropped before counting.
- budget: a hash with `spent` / `reserved` (nano-units) and one `r:<call>` field per open
  reservation, plus a sorted set `<key>:r` of reservations by lease expiry; a call fits
  when spent + reserved + its worst-case cost <= amount.
Rules with enforce = 0 (shadow mode) never refuse: their would-be refusals are returned.

KEYS: rate hashes, concurrency sets, then (budget hash, reservation set) pairs.
ARGV: now_ms (0 = Redis TIME), bucket_ms, nbuckets, call_id, lease_ms, n_rate, n_conc,
n_budget, then per rate (limit, amount, enforce), per concurrency (limit, enforce), per
budget (limit_nano, reserve_nano, enforce, period_end_s (0 = none)).
Returns {admitted, refused (1-based rule index or 0), retry_ms, now_ms, bucket,
{shadow rule indexes}, {use before the call per rate rule}, {reset_ms per rate rule},
{spent+reserved before the call per budget}}.
"""

from __future__ import annotations

__all__ = ["ADMIT", "SETTLE"]

ADMIT = r"""
local now = tonumber(ARGV[1])
if now == 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local bms = tonumber(ARGV[2])
local nb = tonumber(ARGV[3])
local call = ARGV[4]
local lease = tonumber(ARGV[5])
local nr, nc, nbud = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local cur = math.floor(now / bms)
local oldest = cur - nb + 1
local a = 9
local refused, retry = 0, 0
local shadow, used, resets, budget_used = {}, {}, {}, {}
local window_ms = nb * bms

local function fail(index, enforce, wait)
  if enforce then
    if refused == 0 then refused = index; retry = wait end
  else
    shadow[#shadow + 1] = index
  end
end

local rate_amounts = {}
for i = 1, nr do
  local key = KEYS[i]
  local limit, amount, enforce = tonumber(ARGV[a]), tonumber(ARGV[a + 1]), ARGV[a + 2] == '1'
  a = a + 3
  rate_amounts[i] = amount
  local h = redis.call('HGETALL', key)
  local total, stale, live = 0, {}, {}
  for j = 1, #h, 2 do
    local b = tonumber(h[j])
    if b < oldest then
      stale[#stale + 1] = h[j]
    else
      local v = tonumber(h[j + 1])
      total = total + v
      live[#live + 1] = {b, v}
    end
  end
  if #stale > 0 then redis.call('HDEL', key, unpack(stale)) end
  table.sort(live, function(x, y) return x[1] < y[1] end)
  used[i] = total
  local newest = nil
  for j = #live, 1, -1 do
    if live[j][2] > 0 then newest = live[j][1]; break end
  end
  resets[i] = newest and ((newest + nb) * bms - now) or 0
  if total >= limit or total + amount > limit then
    local wait = window_ms
    if amount <= limit then
      local need, freed = total + amount - limit, 0
      for j = 1, #live do
        freed = freed + live[j][2]
        if freed >= need then wait = (live[j][1] + nb) * bms - now; break end
      end
    else
      wait = -1
    end
    fail(i, enforce, wait)
  end
end

for i = 1, nc do
  local key = KEYS[nr + i]
  local limit, enforce = tonumber(ARGV[a]), ARGV[a + 1] == '1'
  a = a + 2
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  if redis.call('ZCARD', key) + 1 > limit then fail(nr + i, enforce, 1000) end
end

local budget_args = {}
for i = 1, nbud do
  local key, rkey = KEYS[nr + nc + 2 * i - 1], KEYS[nr + nc + 2 * i]
  local limit, reserve = tonumber(ARGV[a]), tonumber(ARGV[a + 1])
  local enforce, period_end = ARGV[a + 2] == '1', tonumber(ARGV[a + 3])
  a = a + 4
  budget_args[i] = {reserve, period_end}
  local expired = redis.call('ZRANGEBYSCORE', rkey, '-inf', now)
  for j = 1, #expired do
    local field = 'r:' .. expired[j]
    local amount = redis.call('HGET', key, field)
    if amount then
      redis.call('HINCRBY', key, 'reserved', -tonumber(amount))
      redis.call('HDEL', key, field)
    end
  end
  if #expired > 0 then redis.call('ZREMRANGEBYSCORE', rkey, '-inf', now) end
  local state = redis.call('HMGET', key, 'spent', 'reserved')
  local committed = (tonumber(state[1]) or 0) + (tonumber(state[2]) or 0)
  budget_used[i] = committed
  if committed >= limit or committed + reserve > limit then
    local wait = period_end > 0 and (period_end * 1000 - now) or -1
    fail(nr + nc + i, enforce, wait)
  end
end

if refused ~= 0 then
  return {0, refused, retry, now, cur, shadow, used, resets, budget_used}
end

for i = 1, nr do
  if rate_amounts[i] > 0 then
    redis.call('HINCRBY', KEYS[i], cur, rate_amounts[i])
    redis.call('PEXPIRE', KEYS[i], window_ms + bms)
  end
end
for i = 1, nc do
  local key = KEYS[nr + i]
  redis.call('ZADD', key, now + lease, call)
  redis.call('PEXPIRE', key, lease)
end
for i = 1, nbud do
  local key, rkey = KEYS[nr + nc + 2 * i - 1], KEYS[nr + nc + 2 * i]
  local reserve, period_end = budget_args[i][1], budget_args[i][2]
  if reserve > 0 then
    redis.call('HINCRBY', key, 'reserved', reserve)
    redis.call('HSET', key, 'r:' .. call, reserve)
    redis.call('ZADD', rkey, now + lease, call)
  else
    redis.call('HSETNX', key, 'spent', 0)
  end
  if period_end > 0 then
    redis.call('EXPIREAT', key, period_end + 86400)
    redis.call('EXPIREAT', rkey, period_end + 86400)
  end
end
return {1, 0, 0, now, cur, shadow, used, resets, budget_used}
"""

# KEYS: rate hashes to correct, concurrency sets, (budget hash, reservation set) pairs.
# ARGV: call_id, bucket, n_rate, n_conc, n_budget, per rate: delta, per budget:
# cost_nano, period_end_s. Releases the call's slots and reservations and charges its
# real use; idempotent per call (a reservation is released once).
SETTLE = r"""
local call, bucket = ARGV[1], ARGV[2]
local nr, nc, nbud = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local a = 6
for i = 1, nr do
  local delta = tonumber(ARGV[a])
  a = a + 1
  if delta ~= 0 and redis.call('EXISTS', KEYS[i]) == 1 then
    redis.call('HINCRBY', KEYS[i], bucket, delta)
  end
end
for i = 1, nc do
  redis.call('ZREM', KEYS[nr + i], call)
end
for i = 1, nbud do
  local key, rkey = KEYS[nr + nc + 2 * i - 1], KEYS[nr + nc + 2 * i]
  local cost, period_end = tonumber(ARGV[a]), tonumber(ARGV[a + 1])
  a = a + 2
  local field = 'r:' .. call
  local amount = redis.call('HGET', key, field)
  if amount then
    redis.call('HINCRBY', key, 'reserved', -tonumber(amount))
    redis.call('HDEL', key, field)
    redis.call('ZREM', rkey, call)
  end
  if cost ~= 0 then
    redis.call('HINCRBY', key, 'spent', cost)
    if period_end > 0 then redis.call('EXPIREAT', key, period_end + 86400) end
  end
end
return 1
"""
