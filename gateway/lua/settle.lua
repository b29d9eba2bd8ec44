-- Settlement: charges the tokens a request actually used, refunds the rest of its reservation,
-- and frees its concurrency slots. Exact under retries: a second settle of the same id changes
-- nothing. Record formats: see admit.lua.
--
-- KEYS  1 reservations (hash)  2 reservation expiries (zset)
-- ARGV  1 reservation id  2 tokens actually used  3 now (ms)
-- Returns {state, tokens}: {'refunded', n} normally; {'charged', n} when the reservation had been
-- released at its expiry (all of it was refunded then, so what was used is charged now);
-- {'already', 0} for a repeated settle; {'unknown', 0} when there is no record at all.

local TOMBSTONE_MS = 3600000
local now = tonumber(ARGV[3])
local used = tonumber(ARGV[2])
local rec = redis.call('HGET', KEYS[1], ARGV[1])
if not rec then return {'unknown', 0} end
local kind = string.sub(rec, 1, 1)
if kind == 'S' then return {'already', 0} end

local result
if kind == 'X' then
  local tpm_key, key_tpm_key, day_key, month_key =
    string.match(rec, '^X|([^|]*)|([^|]*)|([^|]*)|([^|]*)$')
  for _, k in ipairs({tpm_key, key_tpm_key, day_key, month_key}) do
    if k ~= '' and redis.call('EXISTS', k) == 1 then redis.call('INCRBY', k, used) end
  end
  result = {'charged', used}
else
  local amount, tpm_key, key_tpm_key, day_key, month_key, conc_key, key_conc_key =
    string.match(rec, '^R|(%d+)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)$')
  local refund = tonumber(amount) - used
  for _, k in ipairs({tpm_key, key_tpm_key, day_key, month_key}) do
    if k ~= '' and redis.call('EXISTS', k) == 1 then redis.call('DECRBY', k, refund) end
  end
  if conc_key ~= '' then redis.call('ZREM', conc_key, ARGV[1]) end
  if key_conc_key ~= '' then redis.call('ZREM', key_conc_key, ARGV[1]) end
  result = {'refunded', refund}
end
redis.call('HSET', KEYS[1], ARGV[1], 'S')
redis.call('ZADD', KEYS[2], now + TOMBSTONE_MS, ARGV[1])
return result
