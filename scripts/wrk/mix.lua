-- wrk: creates (200), each answer's cookie then used once for a verify with a wrong
-- code (403 OTP:INCORRECT): half the requests are wrong verifies, each with a fresh
-- single-use cookie, as the in-process verify-wrong scenario sends them.
package.path = debug.getinfo(1, "S").source:match("^@(.*/)") .. "?.lua;" .. package.path
require("common")

local cookies, first, last = {}, 1, 0

request = function()
  if first > last then
    return create_request()
  end
  local cookie = cookies[first]
  cookies[first] = nil
  first = first + 1
  return wrk.format("POST", "/api/otp/verify",
    { ["Content-Type"] = "application/x-www-form-urlencoded",
      ["X-Forwarded-For"] = next_client(), ["Cookie"] = cookie },
    "otp=zzzzzzzzzz")
end

response = function(status, headers)
  count(status)
  local set = status == 200 and (headers["set-cookie"] or headers["Set-Cookie"])
  if set then
    last = last + 1
    cookies[last] = set:match("^[^;]+")
  end
end
