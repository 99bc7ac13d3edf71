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
