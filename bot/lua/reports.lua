-- Report aggregates: one hash per day in the shop's time zone, written by the same script as the
-- events they count, so the figures are exact. Fields: "<metric>" and "<metric>@<dim>" where dim is
-- a:<agent>, g:<group>, c:<channel> or h:<hour>; durations as "<name>:<bucket seconds>" counts plus
-- "<name>_n" and "<name>_ms". The calling script fills REPORT: k (today's key), ttl.
local REPORT = {samples = {}}

-- Bucket upper bounds: to the second up to 10 minutes, 10 s up to an hour, a minute up to a day.
local function bucket(v)
  v = math.floor(tonumber(v) * 1000 + 0.5) / 1000
  if v < 0 then v = 0 end
  if v <= 600 then return math.ceil(v) end
  if v <= 3600 then return math.ceil(v / 10) * 10 end
  if v <= 86400 then return math.ceil(v / 60) * 60 end
  return math.ceil(v / 3600) * 3600
end

local function rcount_at(key, field, dims, n)
  if not key then return end
  n = n or 1
  redis.call('HINCRBY', key, field, n)
  for _, d in ipairs(dims or {}) do
    if d then redis.call('HINCRBY', key, field .. '@' .. d, n) end
  end
  redis.call('EXPIRE', key, REPORT.ttl or 69120000)
end

local function rcount(field, dims, n) rcount_at(REPORT.k, field, dims, n) end

local function dim(kind, value)
  if value == nil or value == false or value == '' then return false end
  return kind .. ':' .. value
end

local function rsample(name, seconds, dims)
  if not REPORT.k then return end
  local v = math.max(0, tonumber(seconds))
  rcount(name .. ':' .. bucket(v), dims)
  rcount(name .. '_n', dims)
  rcount(name .. '_ms', dims, math.floor(v * 1000 + 0.5))
  REPORT.samples[#REPORT.samples + 1] = {name, v}  -- handed back for the process's own metrics
end
