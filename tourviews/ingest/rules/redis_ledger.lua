-- One beacon judged against the state every ingest node shares, and stored: the Redis
-- backend of tourviews.ingest.rules.ledger.Ledger (tourviews/ingest/rules/redis_ledger.py
-- calls it). One call is atomic, so two nodes cannot both count a duplicate or both pass
-- a full limit. Time is Redis' own TIME, kept from going back.
--
-- The steps are those of the table in tourviews/ingest/rules/steps.py from the throttle
-- on, in its order, each marked "-- step: NAME" (tests/ingest/test_steps.py holds the
-- markers to the table): the ledger's own, and the places of the pipeline's verdict.
--
-- The constants in braces are filled in from the settings when the script is loaded:
-- nodes with the same settings run the same script (one SHA).
--
-- KEYS: 1 the clock, 2 the stream, 3 withdrawn, 4-6 the limits (source network,
-- visitor, tour), 7-8 scene names and those the source brought, 9-10 action names and
-- those it brought, 11 rotation, 12 dedup, 13 visit; then, for each bounded value of a
-- view (its source, its UTM values), that dimension's names and those the source brought.
-- ARGV: 1 kind, 2 the pipeline's verdict or "", 3 scene or "", 4 the scene rule
-- ("bound": the tour's bound applies; "in", "out": the tour declares its scenes),
-- 5 action or "", 6 the UTC day (ordinal), 7 the row, 8 the hour, 9 tour, 10 IP hash,
-- 11 source network, 12 the visitor's keyed hash; then, for each bounded value, its
-- dimension (a field of the row) and the value.
-- Returns {outcome, retry after in ms}. ARGV[1] "withdraw" (KEYS 1-3 only): the visitor
-- withdrew consent; their beacons in flight are dropped for a while.

local WINDOW, IDLE = {window}, {idle}  -- seconds
local ROTATION_LIMIT, MAX_NAMES, NEW_PER_SOURCE = {rotation_limit}, {max_names}, {new_per_source}
local INTERVALS = { {source_interval}, {visitor_interval}, {tour_interval} }
local TOLERANCES = { {source_tolerance}, {visitor_tolerance}, {tour_tolerance} }
local EPSILON = 1e-6  -- times are kept to the microsecond
local KEEP_MS = {keep_ms}  -- how long state outlives its window (a step of Redis' clock)
local WITHDRAWN = {withdrawn_window}

local kind, verdict, scene, scene_rule = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local action, day = ARGV[5], ARGV[6]

-- The monotonic moment: Redis' clock, with any step back absorbed into an offset.
local time = redis.call('TIME')
local wall = tonumber(time[1]) + tonumber(time[2]) / 1e6
local clock = redis.call('HMGET', KEYS[1], 'last', 'offset')
local last, offset = tonumber(clock[1]), tonumber(clock[2]) or 0
if last ~= nil and wall + offset < last then
  offset = last - wall
end
local now = wall + offset
redis.call('HSET', KEYS[1], 'last', string.format('%.6f', now), 'offset', string.format('%.6f', offset))

local function drop(outcome, sender)
  redis.call('XADD', KEYS[2], '*', 'drop', outcome, 'hour', ARGV[8], 'tour', ARGV[9], 'sender', sender)
  return {outcome, 0}
end

local function keep(key, value, seconds)
  redis.call('SET', key, value, 'PX', math.ceil(seconds * 1000) + KEEP_MS)
end

if kind == 'withdraw' then
  keep(KEYS[3], string.format('%.6f', now + WITHDRAWN), WITHDRAWN)
  return {'withdrawn', 0}
end

-- step: throttle. GCRA on each limit; none is charged unless all pass
local tats = {}
for i = 1, 3 do
  local tat = tonumber(redis.call('GET', KEYS[i + 3])) or now
  if tat < now then tat = now end
  local wait = tat - now - TOLERANCES[i]
  if wait > EPSILON then
    drop('throttled', ARGV[11])
    return {'throttled', math.ceil(wait * 1000)}
  end
  tats[i] = tat + INTERVALS[i]
end
for i = 1, 3 do
  keep(KEYS[i + 3], string.format('%.6f', tats[i]), tats[i] - now)
end

-- step: after_withdrawal
local until_ = tonumber(redis.call('GET', KEYS[3]))
if until_ ~= nil and now < until_ then
  return drop('withdrawn', '')
end

-- step: check_origin, the pipeline's verdict
if verdict == 'origin' then
  return drop(verdict, ARGV[10])
end

-- step: filter_bots, the pipeline's verdict
if verdict == 'bot' then
  return drop(verdict, ARGV[10])
end

-- step: bound_names. A name counted before passes; a new one while the tour has room and
-- the source has not brought its share
local function admits(names, brought, name)
  if redis.call('SISMEMBER', names, name) == 1 then return true end
  return redis.call('SCARD', names) < MAX_NAMES
    and (tonumber(redis.call('GET', brought)) or 0) < NEW_PER_SOURCE
end
if action ~= '' and not admits(KEYS[9], KEYS[10], action) then
  return drop('scene_limit', ARGV[10])
end
-- a view's source and UTM values past their bounds are counted as (other): the row's
-- "other" names their fields, for the drain; nothing is dropped for them
local bounded, others = {}, {}
for i = 0, (#ARGV - 12) / 2 - 1 do
  local names, brought, value = KEYS[14 + 2 * i], KEYS[15 + 2 * i], ARGV[14 + 2 * i]
  if admits(names, brought, value) then
    bounded[#bounded + 1] = {names, brought, value}
  else
    others[#others + 1] = ARGV[13 + 2 * i]
  end
end
local scene_kept = scene ~= ''
if scene_kept then
  if scene_rule == 'bound' then
    scene_kept = admits(KEYS[7], KEYS[8], scene)
  else
    scene_kept = scene_rule == 'in'
  end
  if not scene_kept and kind == 'scene' then
    return drop('scene_limit', ARGV[10])
  end
end

-- step: guard_rotation. Distinct visitors per (source network, tour) within the window
if redis.call('ZSCORE', KEYS[11], ARGV[12]) == false then
  if redis.call('ZCARD', KEYS[11]) >= ROTATION_LIMIT then
    redis.call('ZREMRANGEBYSCORE', KEYS[11], '-inf', '(' .. string.format('%.6f', now - WINDOW))
    if redis.call('ZCARD', KEYS[11]) >= ROTATION_LIMIT then
      return drop('rotation', ARGV[11])
    end
  end
end
redis.call('ZADD', KEYS[11], string.format('%.6f', now), ARGV[12])
redis.call('PEXPIRE', KEYS[11], math.ceil(WINDOW * 1000) + KEEP_MS)

-- step: dedup. Views and scenes, again within the window after the last counted one
if kind == 'view' or kind == 'scene' then
  local counted = tonumber(redis.call('GET', KEYS[12]))
  if counted ~= nil and now - counted < WINDOW then
    return drop('duplicate', ARGV[10])
  end
  keep(KEYS[12], string.format('%.6f', now), WINDOW)
end

-- step: within_visit. The visit's last moment and the UTC day it began on
local visit = redis.call('GET', KEYS[13])
local going_on = false
if visit ~= false then
  local at, began = string.match(visit, '^([^,]+),(.+)$')
  going_on = now - tonumber(at) <= IDLE and began == day
end
if (kind == 'engage' or kind == 'action') and not going_on then
  return drop('outside_visit', ARGV[10])
end

-- counted: what it changes, and the row
local function record(names, brought, name)
  if redis.call('SISMEMBER', names, name) == 1 or redis.call('SCARD', names) >= MAX_NAMES then
    return
  end
  redis.call('SADD', names, name)
  redis.call('INCR', brought)
  redis.call('PEXPIRE', brought, 86400000)
end
if scene_kept then
  record(KEYS[7], KEYS[8], scene)
end
if kind == 'view' then
  keep(KEYS[13], string.format('%.6f', now) .. ',' .. day, IDLE)
elseif going_on then
  keep(KEYS[13], string.format('%.6f', now) .. ',' .. day, IDLE)
end
if action ~= '' then
  record(KEYS[9], KEYS[10], action)
end
for _, each in ipairs(bounded) do
  record(each[1], each[2], each[3])
end
local entry = {'row', ARGV[7]}
if not scene_kept and scene ~= '' then
  entry[#entry + 1], entry[#entry + 2] = 'noscene', '1'
end
if #others > 0 then
  entry[#entry + 1], entry[#entry + 2] = 'other', table.concat(others, ' ')
end
redis.call('XADD', KEYS[2], '*', unpack(entry))
return {'counted', 0}
