-- wrk: create -> verify flows with the right code (200, the final action runs, the
-- cookie is cleared): half the requests are creates, half right-code verifies. wrk
-- cannot read a code from the log, so the addresses are test credentials with one
-- fixed code (OTP_TEST_CREDENTIALS_FILE, written by scripts/wrk.sh for the flow
-- scenario): every rule holds for them, but nothing is sent, so a create writes
-- three log lines here instead of four.
package.path = debug.getinfo(1, "S").source:match("^@(.*/)") .. "?.lua;" .. package.path
require("common")

-- As many addresses as scripts/wrk.sh lists; each is used about once per server.
local POOL = 262144
local CODE = "flowcode42"
local cookies, first, last = {}, 1, 0

request = function()
  if first > last then
    local client = next_client()
    return wrk.format("POST", "/api/otp/create",
      { ["Content-Type"] = "application/json", ["X-Forwarded-For"] = client },
      string.format('{"email":"flow%d@bench.example"}', n % POOL))
  end
  local cookie = cookies[first]
  cookies[first] = nil
  first = first + 1
  return wrk.format("POST", "/api/otp/verify",
    { ["Content-Type"] = "application/x-www-form-urlencoded",
      ["X-Forwarded-For"] = next_client(), ["Cookie"] = cookie },
    "otp=" .. CODE)
end

response = function(status, headers)
  count(status)
  -- A create sets a cookie with a value; a verify that succeeded clears it (empty).
  local set = status == 200 and (headers["set-cookie"] or headers["Set-Cookie"])
  local pair = set and set:match("^[^;]+")
  if pair and pair:match("=(.+)$") then
    last = last + 1
    cookies[last] = pair
  end
end
