-- Realistic beacons for wrk: views of new visitors, 50 tours, addresses forwarded by a
-- trusted proxy, real browser user-agents; every third request is the engaged time
-- (engage.js) of a visitor who viewed a moment before, in their visit. FRESH_AGENTS=1 makes every user-agent
-- new (a cache-busting flood). Of the views, six in ten say where they came from: a
-- listing portal or an agency's site embedding the tour, a search engine, a social
-- network, a campaign (each referrer a whole URL, as beacon.js may send it); the rest
-- are direct, or come from a beacon.js that sends no such field.
local agents = {
  "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
  "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
  "Mozilla/5.0 (Linux; Android 14; SM-S921B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
  "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
  "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
}
local came = {
  ',"referrer":"https://krisha.kz/a/show/684512345?from=search","embedded":true',
  ',"referrer":"https://agency.example.kz/objects/12-room-flat","embedded":true',
  ',"referrer":"https://www.google.kz/"',
  ',"referrer":"https://yandex.kz/search/?text=%D0%BA%D0%B2%D0%B0%D1%80%D1%82%D0%B8%D1%80%D0%B0&lr=162"',
  ',"referrer":"https://vk.com/"',
  ',"referrer":"https://t.me/","utm_source":"telegram","utm_medium":"social","utm_campaign":"winter-2026"',
  '', '', '', '',
}
local fresh = os.getenv("FRESH_AGENTS") == "1"
local counter = 0
local threads = 0
local recent = {} -- the last views sent: {body prefix, user-agent, address}
local RECENT = 64
thread_id = 0 -- a global: setup() sets it in each thread's own Lua state

setup = function(thread)
  thread:set("thread_id", threads)
  threads = threads + 1
end

init = function()
  math.randomseed(os.time() * 1000 + thread_id)
end

local function send(body, agent, address)
  return wrk.format("POST", "/v1/beacon", {
    ["Content-Type"] = "text/plain;charset=UTF-8",
    ["User-Agent"] = agent,
    ["X-Forwarded-For"] = address,
  }, body)
end

request = function()
  counter = counter + 1
  if counter % 3 == 0 and #recent == RECENT then
    local viewed = recent[math.random(1, RECENT)]
    local seconds = math.random(1, 120)
    return send(viewed[1] .. ',"event":"engage","seconds":' .. seconds .. ',"scene":"lobby"}',
      viewed[2], viewed[3])
  end
  local n = counter * 2 + thread_id
  local visitor = string.format("%08x-%04x-4%03x-8%03x-%012x",
    math.random(0, 0x7fffffff), math.random(0, 0xffff), math.random(0, 0xfff),
    math.random(0, 0xfff), n)
  local agent = agents[n % #agents + 1]
  if fresh then
    agent = agent .. " Build/" .. thread_id .. "." .. counter
  end
  local prefix = '{"tour":"t' .. (n % 50) .. '","visitor":"' .. visitor .. '"'
  local address = "198.51." .. (n % 250) .. "." .. (math.floor(n / 250) % 250)
  recent[(counter % RECENT) + 1] = {prefix, agent, address}
  return send(prefix .. came[counter % #came + 1] .. "}", agent, address)
end
