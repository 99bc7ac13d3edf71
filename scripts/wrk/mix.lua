-- wrk: creates (200), each answer's cookie then used once for a verify with a wrong
-- code (403 OTP:INCORRECT): half the requests are wrong verifies, each with a fresh
-- single-use cookie, as the in-process verify-wrong scenario sends them.
package.path = debug.getinfo(1, "S").source:match("^@(.*/)") .. "?.lua;" .. package.path
require("common")

request = function()
  return verify_request("zzzzzzzzzz") or create_request()
end

response = function(status, headers)
  count(status)
  keep_cookie(status, headers)
end
