-- Shared by the wrk scripts of scripts/wrk.sh: every request names the next of
-- 1 048 576 clients in X-Forwarded-For (the server trusts 127.0.0.1 as a proxy), as
-- examples/load.rs does, so the per-client limits do their work without being hit;
-- answers are counted by status, per thread, and reported when the run is done.
local threads = {}
function setup(thread) table.insert(threads, thread) end

-- Consecutive wrk processes (the warm-up, then the timed run, started a second or
-- more apart, each under 262 144 requests) use different clients and addresses:
-- clients from another quarter of the 2^20 cycle (7919 is odd, so distinct counters
-- mod 2^20 give distinct clients), addresses a million further on.
local c = (os.time() % 4) * 262144
n = (os.time() % 10000) * 1000000
statuses = {}

function next_client()
  n = n + 1
  c = c + 1
  local k = (c * 7919) % 1048576
  return string.format("10.%d.%d.%d", math.floor(k / 65536) % 16, math.floor(k / 256) % 256, k % 256)
end

function count(status)
  statuses[status] = (statuses[status] or 0) + 1
end

function create_request()
  return wrk.format("POST", "/api/otp/create",
    { ["Content-Type"] = "application/json", ["X-Forwarded-For"] = next_client() },
    string.format('{"email":"user%d@bench.example"}', n))
end

-- The cookies of answered creates, each used once by a verify (mix, flow).
local cookies, first, last = {}, 1, 0

-- Keeps the session cookie a 200 answer set: a create's (a verify that succeeded
-- clears the cookie, with no value).
function keep_cookie(status, headers)
  local set = status == 200 and (headers["set-cookie"] or headers["Set-Cookie"])
  local pair = set and set:match("^[^;]+")
  if pair and pair:match("=(.+)$") then
    last = last + 1
    cookies[last] = pair
  end
end

-- A verify of `code` with the oldest kept cookie; nil when none is kept.
function verify_request(code)
  if first > last then
    return nil
  end
  local cookie = cookies[first]
  cookies[first] = nil
  first = first + 1
  return wrk.format("POST", "/api/otp/verify",
    { ["Content-Type"] = "application/x-www-form-urlencoded",
      ["X-Forwarded-For"] = next_client(), ["Cookie"] = cookie },
    "otp=" .. code)
end

function done(summary, latency, requests)
  local total = {}
  for _, thread in ipairs(threads) do
    for status, k in pairs(thread:get("statuses")) do total[status] = (total[status] or 0) + k end
  end
  local parts = {}
  for status, k in pairs(total) do table.insert(parts, string.format("%d=%d", status, k)) end
  table.sort(parts)
  io.write("statuses " .. table.concat(parts, " ") .. "\n")
end
