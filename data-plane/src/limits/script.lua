-- TokenRouter's limiter, one atomic round trip per request phase. Clock: Redis TIME, so the data
-- planes' clocks do not matter. KEYS[i] is the base name of check i's counters:
--   <base>:log    sorted set, one member per request admitted in the last minute (score: ms)
--   <base>:st     hash: btat (GCRA burst), ttat (token bucket), both in ms
--   <base>:lease  sorted set of requests in flight (score: lease expiry, ms)
--   <base>:$<w>   micro-USD spent in the budget window starting at <w> (ms)
-- ARGV[1] = phase ("admit" | "settle" | "renew"), ARGV[2] = request id, ARGV[3] = lease TTL (ms).
-- admit:  ARGV[4] tokens, ARGV[5] cost (micro-USD), then per check 6 values:
--         rpm, burst, tpm, max_concurrent, budget (micro-USD), period (d|w|m|t|-).
--   -> {1, req_limit, req_remaining, req_reset_ms, tok_limit, tok_remaining, tok_reset_ms, w_1..w_n}
--      (-1 where no such limit; w_i: the budget window start charged, or -1)
--   -> {0, check (1-based), what, retry_ms}   what: 1 rpm, 2 burst, 3 tpm, 4 too many tokens,
--                                              5 concurrency, 6 budget. Nothing is charged.
-- settle: ARGV[4] token delta (used - reserved), ARGV[5] cost delta, then per check 3 values:
--         tpm, max_concurrent, window start charged at admission (-1: no budget).
-- renew:  per check 1 value: max_concurrent. Extends this request's leases.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local phase, id, ttl = ARGV[1], ARGV[2], tonumber(ARGV[3])
local MINUTE = 60000
local DAY = 86400000

local function days_from_civil(y, m)
  if m <= 2 then y = y - 1 end
  local era = math.floor(y / 400)
  local yoe = y - era * 400
  local mp = (m > 2) and (m - 3) or (m + 9)
  local doy = math.floor((153 * mp + 2) / 5)
  local doe = yoe * 365 + math.floor(yoe / 4) - math.floor(yoe / 100) + doy
  return era * 146097 + doe - 719468
end

local function window(code)
  if code == 't' then return 0, -1 end
  local day = math.floor(now / DAY)
  if code == 'd' then return day * DAY, (day + 1) * DAY end
  if code == 'w' then
    local start = day - ((day + 3) % 7)
    return start * DAY, (start + 7) * DAY
  end
  local z = day + 719468
  local era = math.floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524) - math.floor(doe / 146096)) / 365)
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
  local mp = math.floor((5 * doy + 2) / 153)
  local m = (mp < 10) and (mp + 3) or (mp - 9)
  local y = yoe + era * 400
  if m <= 2 then y = y + 1 end
  local ny, nm = y, m + 1
  if nm > 12 then nm, ny = 1, y + 1 end
  return days_from_civil(y, m) * DAY, days_from_civil(ny, nm) * DAY
end

if phase == 'renew' then
  for i = 1, #KEYS do
    if tonumber(ARGV[3 + i]) > 0 then
      redis.call('ZADD', KEYS[i] .. ':lease', 'XX', now + ttl, id)
      redis.call('PEXPIRE', KEYS[i] .. ':lease', ttl * 2)
    end
  end
  return {1}
end

if phase == 'settle' then
  local dtok, dcost = tonumber(ARGV[4]), tonumber(ARGV[5])
  for i = 1, #KEYS do
    local a = 5 + (i - 1) * 3
    local tpm, maxc, w = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
    local base = KEYS[i]
    if tpm > 0 and dtok ~= 0 then
      local tat = tonumber(redis.call('HGET', base .. ':st', 'ttat') or now)
      redis.call('HSET', base .. ':st', 'ttat', tat + dtok * MINUTE / tpm)
      redis.call('PEXPIRE', base .. ':st', 2 * MINUTE)
    end
    if maxc > 0 then redis.call('ZREM', base .. ':lease', id) end
    if w >= 0 and dcost ~= 0 then redis.call('INCRBY', base .. ':$' .. w, dcost) end
  end
  return {1}
end

-- admit
local tokens, cost = tonumber(ARGV[4]), tonumber(ARGV[5])
local n = #KEYS
local rl, rr, rs, tl, tr, ts = -1, -1, -1, -1, -1, -1
local plan = {}
for i = 1, n do
  local a = 5 + (i - 1) * 6
  local rpm, burst, tpm = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
  local maxc, budget, period = tonumber(ARGV[a + 4]), tonumber(ARGV[a + 5]), ARGV[a + 6]
  local base = KEYS[i]
  local p = {rpm = rpm, burst = burst, tpm = tpm, maxc = maxc, budget = budget, w = -1}
  if rpm > 0 then
    local log = base .. ':log'
    redis.call('ZREMRANGEBYSCORE', log, '-inf', now - MINUTE)
    local used = redis.call('ZCARD', log)
    if used >= rpm then
      local oldest = redis.call('ZRANGE', log, 0, 0, 'WITHSCORES')
      return {0, i, 1, tonumber(oldest[2]) + MINUTE - now}
    end
    local reset = MINUTE
    if used > 0 then
      local oldest = redis.call('ZRANGE', log, 0, 0, 'WITHSCORES')
      reset = tonumber(oldest[2]) + MINUTE - now
    end
    if rr < 0 or rpm - used - 1 < rr then rl, rr, rs = rpm, rpm - used - 1, reset end
    if burst > 0 then
      local interval = MINUTE / rpm
      local tat = math.max(tonumber(redis.call('HGET', base .. ':st', 'btat') or now), now) + interval
      if tat - now > interval * burst then return {0, i, 2, math.ceil(tat - now - interval * burst)} end
      p.btat = tat
    end
  end
  if tpm > 0 then
    if tokens > tpm then return {0, i, 4, MINUTE} end
    local per = MINUTE / tpm
    local tat = math.max(tonumber(redis.call('HGET', base .. ':st', 'ttat') or now), now) + tokens * per
    if tat - now > MINUTE then return {0, i, 3, math.ceil(tat - now - MINUTE)} end
    local remaining = math.floor((MINUTE - (tat - now)) / per)
    if tr < 0 or remaining < tr then tl, tr, ts = tpm, remaining, math.ceil(tat - now) end
    p.ttat = tat
  end
  if maxc > 0 then
    local leases = base .. ':lease'
    redis.call('ZREMRANGEBYSCORE', leases, '-inf', now)
    if redis.call('ZCARD', leases) >= maxc then return {0, i, 5, 1000} end
  end
  if budget > 0 then
    local w, e = window(period)
    local spent = tonumber(redis.call('GET', base .. ':$' .. w) or 0)
    if spent + cost > budget then
      local retry = 0
      if e > 0 then retry = e - now end
      return {0, i, 6, retry}
    end
    p.w, p.e = w, e
  end
  plan[i] = p
end
local out = {1, rl, rr, rs, tl, tr, ts}
for i = 1, n do
  local p, base = plan[i], KEYS[i]
  if p.rpm > 0 then
    redis.call('ZADD', base .. ':log', now, id)
    redis.call('PEXPIRE', base .. ':log', MINUTE)
  end
  if p.btat then redis.call('HSET', base .. ':st', 'btat', p.btat) end
  if p.ttat then redis.call('HSET', base .. ':st', 'ttat', p.ttat) end
  if p.btat or p.ttat then redis.call('PEXPIRE', base .. ':st', 2 * MINUTE) end
  if p.maxc > 0 then
    redis.call('ZADD', base .. ':lease', now + ttl, id)
    redis.call('PEXPIRE', base .. ':lease', ttl * 2)
  end
  if p.w >= 0 then
    local key = base .. ':$' .. p.w
    redis.call('INCRBY', key, cost)
    if p.e > 0 then redis.call('PEXPIREAT', key, p.e + DAY) end
  end
  out[7 + i] = p.w
end
return out
