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
  local amount, day_key, month_key, held
  if kind == 'O' or kind == 'R' then -- open (R: from versions that kept in-flight sets)
    amount, day_key, month_key = string.match(rec, '^[OR]|(%d+)|[^|]*|[^|]*|([^|]*)|([^|]*)|')
    held = amount and tonumber(amount)
  elseif kind == 'G' then -- a group admitted ahead: each unit still open holds `amount`
    local units
    amount, day_key, month_key, units =
      string.match(rec, '^G|(%d+)|[^|]*|[^|]*|([^|]*)|([^|]*)|[^|]*|[^|]*|%d+|(%d+)$')
    held = amount and tonumber(amount) * tonumber(units)
  end
  if held then
    if day_key == KEYS[1] then open_day = open_day + held end
    if month_key == KEYS[2] then open_month = open_month + held end
  end
end
local day = tonumber(ARGV[1]) + open_day
local month = tonumber(ARGV[2]) + open_month
redis.call('SET', KEYS[1], day, 'PX', tonumber(ARGV[3]) + 86400000)
redis.call('SET', KEYS[2], month, 'PX', tonumber(ARGV[4]) + 86400000)
return {open_day, open_month, day, month}
