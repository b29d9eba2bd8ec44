-- Admission: checks every limit and, only if all pass, records the request and reserves tokens.
-- All-or-nothing, in one round trip. Every key carries the tenant's hash tag ({t:<tenant>}), so
-- the script touches one Redis Cluster slot.
--
-- KEYS  1 tenant requests in this minute    2 tenant tokens in this minute
--       3 tenant in-flight set (zset: reservation id -> expiry ms)
--       4 key requests in this minute       5 key tokens in this minute
--       6 key in-flight set                 7 tenant tokens today   8 tenant tokens this month
--       9 reservations (hash: id -> record) 10 reservation expiries (zset: id -> expiry ms)
-- ARGV  1 now (ms)  2 reservation id  3 tokens to reserve  4 reservation expiry (ms)
--       5..12 limits, -1 = unlimited: tenant rpm, tenant tpm, tenant concurrency,
--             key rpm, key tpm, key concurrency, tokens per day, tokens per month
--       13 ms until the minute window ends  14 ms until the day ends  15 ms until the month ends
-- Returns {1, rpm_limit, rpm_remaining, tpm_limit, tpm_remaining} when admitted, or
--         {0, which limit, retry after (ms), rpm_limit, rpm_remaining, tpm_limit, tpm_remaining}.

local now = tonumber(ARGV[1])
local id = ARGV[2]
local tokens = tonumber(ARGV[3])
local expiry = tonumber(ARGV[4])
local lim = {}
for i = 5, 12 do lim[i - 4] = tonumber(ARGV[i]) end
local minute_left = tonumber(ARGV[13])
local day_left = tonumber(ARGV[14])
local month_left = tonumber(ARGV[15])

-- Reservation records (KEYS[9]): "R|amount|tpm|key tpm|day|month|in-flight|key in-flight" while
-- open; "X|tpm|key tpm|day|month" once released at its expiry but not yet settled; "S" once
-- settled. X and S are tombstones kept for an hour so a late or repeated settle stays exact.
local TOMBSTONE_MS = 3600000
local due = redis.call('ZRANGEBYSCORE', KEYS[10], '-inf', now)
for _, rid in ipairs(due) do
  local rec = redis.call('HGET', KEYS[9], rid)
  if rec and string.sub(rec, 1, 1) == 'R' then
    -- Its settlement never came (a crashed instance): refund the tokens, free the slots.
    local amount, tpm_key, key_tpm_key, day_key, month_key, conc_key, key_conc_key =
      string.match(rec, '^R|(%d+)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)$')
    amount = tonumber(amount)
    for _, k in ipairs({tpm_key, key_tpm_key, day_key, month_key}) do
      if k ~= '' and redis.call('EXISTS', k) == 1 then redis.call('DECRBY', k, amount) end
    end
    if conc_key ~= '' then redis.call('ZREM', conc_key, rid) end
    if key_conc_key ~= '' then redis.call('ZREM', key_conc_key, rid) end
    redis.call('HSET', KEYS[9], rid,
               table.concat({'X', tpm_key, key_tpm_key, day_key, month_key}, '|'))
    redis.call('ZADD', KEYS[10], now + TOMBSTONE_MS, rid)
  else
    redis.call('HDEL', KEYS[9], rid)
    redis.call('ZREM', KEYS[10], rid)
  end
end
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[6], '-inf', now)

local t_req = tonumber(redis.call('GET', KEYS[1]) or '0')
local t_tok = tonumber(redis.call('GET', KEYS[2]) or '0')
local k_req = tonumber(redis.call('GET', KEYS[4]) or '0')
local k_tok = tonumber(redis.call('GET', KEYS[5]) or '0')

-- The headers report the tighter of the tenant and key windows.
local function headroom(limit_t, used_t, limit_k, used_k)
  local best_limit, best_left = -1, -1
  if limit_t >= 0 then best_limit, best_left = limit_t, limit_t - used_t end
  if limit_k >= 0 and (best_left < 0 or limit_k - used_k < best_left) then
    best_limit, best_left = limit_k, limit_k - used_k
  end
  if best_left < 0 and best_limit >= 0 then best_left = 0 end
  return best_limit, best_left
end

local function refuse(which, retry)
  local rl, rr = headroom(lim[1], t_req, lim[4], k_req)
  local tl, tr = headroom(lim[2], t_tok, lim[5], k_tok)
  return {0, which, retry, rl, rr, tl, tr}
end

if lim[1] >= 0 and t_req + 1 > lim[1] then return refuse('requests_per_minute', minute_left) end
if lim[4] >= 0 and k_req + 1 > lim[4] then return refuse('key_requests_per_minute', minute_left) end
if lim[2] >= 0 and t_tok + tokens > lim[2] then return refuse('tokens_per_minute', minute_left) end
if lim[5] >= 0 and k_tok + tokens > lim[5] then return refuse('key_tokens_per_minute', minute_left) end
if lim[3] >= 0 and redis.call('ZCARD', KEYS[3]) + 1 > lim[3] then
  return refuse('max_concurrent_requests', 1000)
end
if lim[6] >= 0 and redis.call('ZCARD', KEYS[6]) + 1 > lim[6] then
  return refuse('key_max_concurrent_requests', 1000)
end
if lim[7] >= 0 and tonumber(redis.call('GET', KEYS[7]) or '0') + tokens > lim[7] then
  return refuse('tokens_per_day', day_left)
end
if lim[8] >= 0 and tonumber(redis.call('GET', KEYS[8]) or '0') + tokens > lim[8] then
  return refuse('tokens_per_month', month_left)
end

-- Admit: record the request, reserve the tokens, take the concurrency slots.
-- A counter gets its expiry when this call created it (its value is then exactly what was
-- added); later calls leave the expiry alone.
local function add(key, amount, ttl)
  if redis.call('INCRBY', key, amount) == amount then redis.call('PEXPIRE', key, ttl) end
end
local window_ttl = minute_left + 60000
add(KEYS[1], 1, window_ttl)
add(KEYS[2], tokens, window_ttl)
add(KEYS[4], 1, window_ttl)
add(KEYS[5], tokens, window_ttl)
add(KEYS[7], tokens, day_left + 86400000)
add(KEYS[8], tokens, month_left + 86400000)
redis.call('ZADD', KEYS[3], expiry, id); redis.call('PEXPIRE', KEYS[3], expiry - now + 60000)
redis.call('ZADD', KEYS[6], expiry, id); redis.call('PEXPIRE', KEYS[6], expiry - now + 60000)
redis.call('HSET', KEYS[9], id, table.concat({'R', tokens, KEYS[2], KEYS[5], KEYS[7], KEYS[8],
                                             KEYS[3], KEYS[6]}, '|'))
redis.call('ZADD', KEYS[10], expiry, id)
redis.call('PEXPIRE', KEYS[9], expiry - now + TOMBSTONE_MS * 2)
redis.call('PEXPIRE', KEYS[10], expiry - now + TOMBSTONE_MS * 2)
t_req = t_req + 1; k_req = k_req + 1; t_tok = t_tok + tokens; k_tok = k_tok + tokens
local rl, rr = headroom(lim[1], t_req, lim[4], k_req)
local tl, tr = headroom(lim[2], t_tok, lim[5], k_tok)
return {1, rl, rr, tl, tr}
