-- wrk: create -> verify flows with the right code (200, the final action runs, the
-- cookie is cleared): half the requests are creates, half right-code verifies. wrk
-- cannot read a code from the log, so the addresses are test credentials with one
-- fixed code (OTP_TEST_CREDENTIALS_FILE, written by scripts/wrk.sh for the flow
-- scenario): every rule holds for them, but nothing is sent, so a create writes
-- three log lines here instead of four.
package.path = debug.getinfo(1, "S").source:match("^@(.*/)") .. "?.lua;" .. package.path
require("common")

-- As many addresses as scripts/wrk.sh lists (a fresh server per run, and an address
-- may take five codes in ten minutes: a few are used twice in a run).
local POOL = 262144
local CODE = "flowcode42"

local function flow_create()
  local client = next_client()
  return wrk.format("POST", "/api/otp/create",
    { ["Content-Type"] = "application/json", ["X-Forwarded-For"] = client },
    string.format('{"email":"flow%d@bench.example"}', n % POOL))
end

request = function()
  return verify_request(CODE) or flow_create()
end

response = function(status, headers)
  count(status)
  keep_cookie(status, headers)
end
