-- Reconcile: sets a tenant's day and month quota counters to what the usage ledger says was
-- used plus what open reservations hold (requests in flight), e.g. after Redis lost its data.
--
-- KEYS  1 tenant tokens that day  2 tenant tokens that month  3 reservations (hash)
-- ARGV  1 tokens used that day (ledger)  2 tokens used that month (ledger)
--       3 ms until the day ends  4 ms until the month ends
-- Returns {reserved that day, reserved that month, day counter, month counter}.

local open_day, open_month = 0, 0
for _, rec in ipairs(redis.call('HVALS', KEYS[3])) do
  local kind = string.sub(rec, 1, 1)
  if kind == 'O' or kind == 'R' then -- open (R: from versions that kept in-flight sets)
    local amount, _, _, day_key, month_key =
      string.match(rec, '^[OR]|(%d+)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|')
    if day_key == KEYS[1] then open_day = open_day + tonumber(amount) end
    if month_key == KEYS[2] then open_month = open_month + tonumber(amount) end
  end
end
local day = tonumber(ARGV[1]) + open_day
local month = tonumber(ARGV[2]) + open_month
redis.call('SET', KEYS[1], day, 'PX', tonumber(ARGV[3]) + 86400000)
redis.call('SET', KEYS[2], month, 'PX', tonumber(ARGV[4]) + 86400000)
return {open_day, open_month, day, month}
