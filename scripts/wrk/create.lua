-- wrk: a create for a new address from a new client per request (200 each).
package.path = debug.getinfo(1, "S").source:match("^@(.*/)") .. "?.lua;" .. package.path
require("common")

request = create_request
response = function(status) count(status) end
