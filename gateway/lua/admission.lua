-- Admission and settlement for one tenant, batched: the settlements and admissions that a
-- tenant's concurrent requests queued while its previous call was in flight go in one call. The
-- effect is that of settling each reservation in turn and then deciding each admission in turn,
-- each seeing the ones before it; but each counter is read once and written once per call, and
-- the records go in one command, so the work per request shrinks as the load grows. Lua is slow
-- next to Redis' own commands (a table or a tonumber costs about as much as a counter update), so
-- the arguments come in flat runs and what several admissions share comes once, as a profile.
-- Every key carries the tenant's hash tag ({t:<tenant>}): one Redis Cluster slot.
--
-- KEYS  1 reservations (hash: id -> record)   2 reservation expiries (zset: id -> expiry ms)
--       3.. the counters that the profiles name by index
-- ARGV  1 now (ms)  2 settlements S  3 profiles P  4 admissions A
--       5 the admissions' reservation expiry (ms)  6 ms until this minute's windows end
--       7 housekeeping: 1 to release expired reservations and drop old tombstones (the caller
--         asks for it about once a second per tenant, and in every call while a sweep comes back
--         full)
--       then S reservation ids, then S token counts actually used
--       then P profiles of 18: 8 limits (-1 = unlimited: tenant rpm, tenant tpm, tenant
--         concurrency, key rpm, key tpm, key concurrency, tokens per day, tokens per month),
--         ms until the day ends, ms until the month ends, and 8 indexes into KEYS: tenant
--         requests this minute, tenant tokens this minute, tenant requests in flight, key
--         requests this minute, key tokens this minute, key requests in flight, tenant tokens
--         today, tenant tokens this month
--       then A reservation ids, A token counts to reserve, A profile numbers (1-based), A unit
--         counts (1 for a request; up to 48 for a group admitted ahead of demand, each unit
--         counted as one request reserving the token count)
-- Returns S + A replies in that order, then the number of expired records handled (SWEEP_MAX:
-- there may be more, and the caller housekeeps again in its next call). A settlement's token
-- count -1 releases a reservation that was never used (one admitted ahead of demand): its tokens
-- and slot are refunded and its request no longer counts in the minute's windows. A settlement's: {'refunded', n} normally; {'charged', n}
-- when the reservation had been released at its expiry (all of it refunded then, so what was
-- used is charged now); {'already', 0} for a repeat in the same call (or a record "S" of earlier
-- versions); {'unknown', 0} when there is no record, as for a repeat in a later call: a settled
-- record is deleted, so a repeat changes nothing either way. An admission's: {1, rpm limit, rpm remaining, tpm limit, tpm remaining, slots
-- remaining, tokens remaining today, tokens remaining this month} when admitted (-1: unlimited),
-- or {0, which limit, retry after (ms), rpm limit, rpm remaining, tpm limit, tpm remaining}.
--
-- Reservation records (KEYS[1]): "O|amount|tpm|key tpm|day|month|in-flight|key in-flight" while
-- open (in-flight: counters); "R|..." the same from versions that kept in-flight sets (zsets of
-- reservation ids), still settled and expired here; "X|tpm|key tpm|day|month" once released at
-- its expiry but not yet settled, a tombstone kept for an hour so that a late settle still
-- charges what was used. A settled record is deleted (earlier versions left an "S" tombstone for
-- an hour: at thousands of requests a second, millions of them, each swept later). A counter
-- that no longer exists (its window ended) is never recreated by a refund.
-- A group admitted ahead: "G|...as O...|mask|units", each unit holding `amount` and a slot,
-- `mask` the units still open (bit n-1 for unit n), `units` how many. A unit settles as
-- "<group id>#<n>", once (again: `already`); the group is deleted with its last unit, and at its
-- expiry releases the units still open and leaves "X|tpm|key tpm|day|month|mask" so that their
-- late settles still charge.

local TOMBSTONE_MS = 3600000
local SWEEP_MAX = 256 -- expired reservations handled per call (the caller asks again when full)
local call, sub, match, find, tonumber = redis.call, string.sub, string.match, string.find, tonumber
local RES, EXP = KEYS[1], KEYS[2]
local now = tonumber(ARGV[1])
local S, P, A = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local expiry, minute_left = tonumber(ARGV[5]), tonumber(ARGV[6])
-- Scores and amounts go to Redis as the strings they came as: a Lua number becomes a string
-- through printf, which costs more here than the command it is for.
local expiry_s = ARGV[5]
local housekeeping = ARGV[7] == '1'
-- Records and in-flight counters live past every open reservation and its tombstone: their
-- expiry is renewed by every call that writes records or takes a slot.
local KEEP_MS = expiry - now + TOMBSTONE_MS * 2
local OPEN = '^([OR])|(%d+)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)$'
local RELEASED = '^X|([^|]*)|([^|]*)|([^|]*)|([^|]*)$'
local GROUP = '^G|(%d+)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|(%d+)|(%d+)$'
local RELEASED_GROUP = '^X|([^|]*)|([^|]*)|([^|]*)|([^|]*)|(%d+)$'
local function forget(ids) -- records gone for good: out of the hash and the expiry zset
  if #ids > 0 then
    call('HDEL', RES, unpack(ids))
    call('ZREM', EXP, unpack(ids))
  end
end

-- 1. Reservations past their expiry: an open one's settlement never came (a crashed instance):
-- refund its tokens and free its slot, leaving an X tombstone; old tombstones go.
local due = housekeeping and call('ZRANGEBYSCORE', EXP, '-inf', now, 'LIMIT', 0, SWEEP_MAX) or {}
if #due > 0 then
  local recs = call('HMGET', RES, unpack(due))
  local drop = {}
  for i, rid in ipairs(due) do
    local rec = recs[i]
    local kind, amount, tpm, ktpm, day, month, inf, kinf, mask, units
    if rec then
      kind, amount, tpm, ktpm, day, month, inf, kinf = match(rec, OPEN)
      if not kind then
        amount, tpm, ktpm, day, month, inf, kinf, mask, units = match(rec, GROUP)
        if amount then kind = 'G' end
      end
    end
    if kind then
      local n = kind == 'G' and tonumber(units) or 1 -- units still open
      for _, k in ipairs({tpm, ktpm, day, month}) do
        if k ~= '' and call('EXISTS', k) == 1 then call('DECRBY', k, tonumber(amount) * n) end
      end
      for _, k in ipairs({inf, kinf}) do
        if k ~= '' then
          if kind == 'R' then
            call('ZREM', k, rid)
          elseif call('EXISTS', k) == 1 then
            call('DECRBY', k, n)
          end
        end
      end
      local x = 'X|' .. tpm .. '|' .. ktpm .. '|' .. day .. '|' .. month
      if kind == 'G' then x = x .. '|' .. mask end -- the units a late settle still charges
      call('HSET', RES, rid, x)
      call('ZADD', EXP, now + TOMBSTONE_MS, rid)
    else
      drop[#drop + 1] = rid
    end
  end
  forget(drop)
end

-- 2. Read what this call needs once: the records being settled and every counter involved.
local names, named = {}, {}
local function need(k)
  if k ~= '' and not named[k] then
    named[k] = true
    names[#names + 1] = k
  end
end
local s_kind, s_amount, s_tpm, s_ktpm, s_day, s_month, s_inf, s_kinf = {}, {}, {}, {}, {}, {}, {}, {}
local s_rpm, s_krpm = {}, {} -- the request counters of an unused reservation being released
local function rpm_of(k) -- a minute's tokens counter -> its requests counter
  if k == '' then return '' end
  return (string.gsub(k, 'tpm:(%d+)$', 'rpm:%1'))
end
-- A unit of a group ("<group id>#<unit>"): the group's record, parsed once per call, is shared
-- by its units' settlements; grp[rid] = false when there is none to settle against.
local s_rid, s_unit, grp, gtouched = {}, {}, {}, {}
if S > 0 then
  for i = 1, S do
    local id = ARGV[7 + i]
    local rid, unit = id, nil
    if find(id, '#', 1, true) then
      local r, u = match(id, '^([^#]+)#(%d+)$')
      if r then rid, unit = r, tonumber(u) end
    end
    s_rid[i], s_unit[i] = rid, unit
  end
  local recs = call('HMGET', RES, unpack(s_rid))
  for i = 1, S do
    local rec, rid = recs[i], s_rid[i]
    if s_unit[i] then
      local g = grp[rid]
      if g == nil then
        g = false
        if rec then
          local amount, tpm, ktpm, day, month, inf, kinf, mask, units = match(rec, GROUP)
          if amount then
            g = {open = true, amount_s = amount, amount = tonumber(amount), tpm = tpm, ktpm = ktpm, day = day,
                 month = month, inf = inf, kinf = kinf, mask = tonumber(mask), units = tonumber(units)}
            need(inf)
            need(kinf)
          else
            tpm, ktpm, day, month, mask = match(rec, RELEASED_GROUP)
            if tpm then g = {open = false, tpm = tpm, ktpm = ktpm, day = day, month = month, mask = tonumber(mask)} end
          end
          if g then
            need(g.tpm)
            need(g.ktpm)
            need(g.day)
            need(g.month)
          end
        end
        grp[rid] = g
      end
      if g then
        s_kind[i] = 'U'
        if g.open and ARGV[7 + S + i] == '-1' then
          s_rpm[i], s_krpm[i] = rpm_of(g.tpm), rpm_of(g.ktpm)
          need(s_rpm[i])
          need(s_krpm[i])
        end
      end
    elseif rec then
      local kind, amount, tpm, ktpm, day, month, inf, kinf = match(rec, OPEN)
      if kind then
        s_amount[i], s_inf[i], s_kinf[i] = tonumber(amount), inf, kinf
        if kind == 'O' then
          need(inf)
          need(kinf)
        end
        if ARGV[7 + S + i] == '-1' then
          s_rpm[i], s_krpm[i] = rpm_of(tpm), rpm_of(ktpm)
          need(s_rpm[i])
          need(s_krpm[i])
        end
      else
        kind = sub(rec, 1, 1)
        if kind == 'X' then
          tpm, ktpm, day, month = match(rec, RELEASED)
          if not tpm then kind = nil end
        elseif kind ~= 'S' then
          kind = nil -- not a record this script wrote: settling it changes nothing
        end
      end
      s_kind[i] = kind
      if tpm then
        s_tpm[i], s_ktpm[i], s_day[i], s_month[i] = tpm, ktpm, day, month
        need(tpm)
        need(ktpm)
        need(day)
        need(month)
      end
    end
  end
end
local base = 8 + 2 * S
local p_lim, p_key, p_day_left, p_month_left = {}, {}, {}, {}
for p = 1, P do
  local lim, key = {}, {}
  for j = 1, 8 do
    lim[j] = tonumber(ARGV[base + j - 1])
    key[j] = KEYS[tonumber(ARGV[base + 9 + j])]
    need(key[j])
  end
  p_lim[p], p_key[p] = lim, key
  p_day_left[p], p_month_left[p] = tonumber(ARGV[base + 8]), tonumber(ARGV[base + 9])
  base = base + 18
end
-- value[k]: the counter as this call has left it so far; false when the key does not exist.
local value = {}
if #names > 0 then
  local got = call('MGET', unpack(names))
  for i, k in ipairs(names) do value[k] = got[i] and tonumber(got[i]) or false end
end
local delta, order, ttl = {}, {}, {}
local function bump(k, n) -- an existing counter only
  local v = value[k]
  if v then
    value[k] = v + n
    local d = delta[k]
    if d == nil then order[#order + 1] = k end
    delta[k] = (d or 0) + n
  end
end
-- A counter this call creates expires with the window of the admission that created it.
local function add(k, n, window)
  local v = value[k]
  if not v then
    v = 0
    if ttl[k] == nil then ttl[k] = window end
  end
  value[k] = v + n
  local d = delta[k]
  if d == nil then order[#order + 1] = k end
  delta[k] = (d or 0) + n
end

local out = {}
local hset, zadd = {}, {} -- field/value pairs for RES, score/member pairs for EXP
local gone = {} -- settled records, deleted
local ALREADY, UNKNOWN = {'already', 0}, {'unknown', 0}

-- 3. Settlements, in order.
local settled = {}
for i = 1, S do
  local id, kind = ARGV[7 + i], s_kind[i]
  if not kind then
    out[i] = UNKNOWN
  elseif kind == 'U' then
    local g, unit = grp[s_rid[i]], s_unit[i]
    local bitv = unit >= 1 and unit <= 48 and 2 ^ (unit - 1) or 0
    if bitv == 0 or g.mask % (2 * bitv) < bitv then
      out[i] = ALREADY -- settled before (or a unit the group never had)
    else
      if not g.touched then
        g.touched = true
        gtouched[#gtouched + 1] = s_rid[i]
      end
      g.mask = g.mask - bitv
      local used = tonumber(ARGV[7 + S + i])
      local unused = used < 0
      if unused then used = 0 end
      local n = used
      if g.open then n = used - g.amount end
      if unused and s_rpm[i] then
        bump(s_rpm[i], -1)
        bump(s_krpm[i], -1)
      end
      bump(g.tpm, n)
      bump(g.ktpm, n)
      bump(g.day, n)
      bump(g.month, n)
      if g.open then
        g.units = g.units - 1
        bump(g.inf, -1)
        bump(g.kinf, -1)
        out[i] = {'refunded', -n}
      else
        out[i] = {'charged', used}
      end
    end
  elseif kind == 'S' or settled[id] then
    out[i] = ALREADY
  else
    local used = tonumber(ARGV[7 + S + i])
    local unused = used < 0
    if unused then used = 0 end
    local n = used
    if kind ~= 'X' then n = used - s_amount[i] end -- the refund, as a negative change
    if unused and s_rpm[i] then
      bump(s_rpm[i], -1)
      bump(s_krpm[i], -1)
    end
    bump(s_tpm[i], n)
    bump(s_ktpm[i], n)
    bump(s_day[i], n)
    bump(s_month[i], n)
    if kind == 'O' then
      bump(s_inf[i], -1)
      bump(s_kinf[i], -1)
      out[i] = {'refunded', -n}
    elseif kind == 'R' then
      if s_inf[i] ~= '' then call('ZREM', s_inf[i], id) end
      if s_kinf[i] ~= '' then call('ZREM', s_kinf[i], id) end
      out[i] = {'refunded', -n}
    else
      out[i] = {'charged', used}
    end
    settled[id] = true
    gone[#gone + 1] = id
  end
end

-- 4. Admissions, in order: each checks every limit and, only if all pass, records the request,
-- reserves its tokens and takes a slot of the tenant's and the key's requests in flight.
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
local window = minute_left + 60000
base = 7 + 2 * S + 18 * P -- the admissions' runs start after it
for i = 1, A do
  local id, tokens_s, p = ARGV[base + i], ARGV[base + A + i], tonumber(ARGV[base + 2 * A + i])
  local c = tonumber(ARGV[base + 3 * A + i]) -- units: 1, or a group admitted ahead
  if not c or c < 1 or c > 48 or c % 1 ~= 0 then return redis.error_reply('admission ' .. i .. ': bad unit count') end
  local tokens = tonumber(tokens_s)
  local ctok = tokens * c
  local lim, k = p_lim[p], p_key[p]
  local t_req, t_tok = value[k[1]] or 0, value[k[2]] or 0
  local k_req, k_tok = value[k[4]] or 0, value[k[5]] or 0
  local which, retry
  if lim[1] >= 0 and t_req + c > lim[1] then which, retry = 'requests_per_minute', minute_left
  elseif lim[4] >= 0 and k_req + c > lim[4] then which, retry = 'key_requests_per_minute', minute_left
  elseif lim[2] >= 0 and t_tok + ctok > lim[2] then which, retry = 'tokens_per_minute', minute_left
  elseif lim[5] >= 0 and k_tok + ctok > lim[5] then which, retry = 'key_tokens_per_minute', minute_left
  elseif lim[3] >= 0 and (value[k[3]] or 0) + c > lim[3] then which, retry = 'max_concurrent_requests', 1000
  elseif lim[6] >= 0 and (value[k[6]] or 0) + c > lim[6] then which, retry = 'key_max_concurrent_requests', 1000
  elseif lim[7] >= 0 and (value[k[7]] or 0) + ctok > lim[7] then which, retry = 'tokens_per_day', p_day_left[p]
  elseif lim[8] >= 0 and (value[k[8]] or 0) + ctok > lim[8] then which, retry = 'tokens_per_month', p_month_left[p]
  end
  if not which then
    add(k[1], c, window)
    add(k[2], ctok, window)
    add(k[4], c, window)
    add(k[5], ctok, window)
    add(k[7], ctok, p_day_left[p] + 86400000)
    add(k[8], ctok, p_month_left[p] + 86400000)
    add(k[3], c, KEEP_MS)
    add(k[6], c, KEEP_MS)
    ttl[k[3]], ttl[k[6]] = KEEP_MS, KEEP_MS -- renewed while slots are taken (never recreated under a holder)
    hset[#hset + 1] = id
    local rest = '|' .. k[2] .. '|' .. k[5] .. '|' .. k[7] .. '|' .. k[8] .. '|' .. k[3] .. '|' .. k[6]
    if c == 1 then
      hset[#hset + 1] = 'O|' .. tokens_s .. rest
    else
      hset[#hset + 1] = 'G|' .. tokens_s .. rest .. '|' .. string.format('%d', 2 ^ c - 1) .. '|' .. c
    end
    zadd[#zadd + 1] = expiry_s
    zadd[#zadd + 1] = id
    t_req, k_req, t_tok, k_tok = t_req + c, k_req + c, t_tok + ctok, k_tok + ctok
  end
  local rl, rr = headroom(lim[1], t_req, lim[4], k_req)
  local tl, tr = headroom(lim[2], t_tok, lim[5], k_tok)
  if which then
    out[S + i] = {0, which, retry, rl, rr, tl, tr}
  else
    local _, slots = headroom(lim[3], value[k[3]] or 0, lim[6], value[k[6]] or 0)
    local _, day = headroom(lim[7], value[k[7]] or 0, -1, 0)
    local _, month = headroom(lim[8], value[k[8]] or 0, -1, 0)
    out[S + i] = {1, rl, rr, tl, tr, slots, day, month}
  end
end

-- 5. Write: each counter once, the records in one command.
for _, k in ipairs(order) do
  local d, t = delta[k], ttl[k]
  if d ~= 0 or t then call('INCRBY', k, d) end
  if t then call('PEXPIRE', k, t) end
end
-- Groups whose units were settled: rewritten with the units still open, deleted once none is.
local gset = {}
for _, rid in ipairs(gtouched) do
  local g = grp[rid]
  if g.mask == 0 then
    gone[#gone + 1] = rid
  else
    gset[#gset + 1] = rid
    local m = string.format('%d', g.mask)
    if g.open then
      gset[#gset + 1] = 'G|' .. g.amount_s .. '|' .. g.tpm .. '|' .. g.ktpm .. '|' .. g.day .. '|' .. g.month .. '|' ..
                        g.inf .. '|' .. g.kinf .. '|' .. m .. '|' .. g.units
    else
      gset[#gset + 1] = 'X|' .. g.tpm .. '|' .. g.ktpm .. '|' .. g.day .. '|' .. g.month .. '|' .. m
    end
  end
end
forget(gone)
if #gset > 0 then call('HSET', RES, unpack(gset)) end
if #hset > 0 then
  call('HSET', RES, unpack(hset))
  call('ZADD', EXP, unpack(zadd))
end
-- The records' hash and zset: renewed by every call that writes or sweeps them, and never
-- shortened. They outlive every counter their records hold amounts in (the day and month
-- counters live to their period's end and a day more): were they to expire first, with a
-- record never settled (its instance crashed) and the tenant quiet meanwhile, its reserved
-- tokens would stay counted in the month, since nothing would be left to sweep.
if #hset > 0 or #due > 0 then
  local keep = KEEP_MS
  for p = 1, P do
    keep = math.max(keep, p_day_left[p] + 86400000, p_month_left[p] + 86400000)
  end
  for _, k in ipairs({RES, EXP}) do
    if call('PTTL', k) < keep then call('PEXPIRE', k, keep) end
  end
end
out[S + A + 1] = #due
return out
