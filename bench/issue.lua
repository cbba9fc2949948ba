-- wrk script: POST /api/coupon/<id>/issue, each request with the next user's token (distinct users).
-- Env: TOKENS (file of "user_id token" lines), COUPON_ID. Prints a JSON line of status counts at the end.
local threads = {}
local tokens = {}
local counter = 0
accepted, rejected, failed = 0, 0, 0

function setup(thread)
  thread:set("offset", #threads * 1000003)
  table.insert(threads, thread)
end

function init(args)
  for line in io.lines(os.getenv("TOKENS")) do
    local _, token = line:match("^(%S+)%s+(%S+)$")
    if token then tokens[#tokens + 1] = token end
  end
  counter = offset
end

function request()
  counter = counter + 1
  local token = tokens[(counter % #tokens) + 1]
  return wrk.format("POST", "/api/coupon/" .. os.getenv("COUPON_ID") .. "/issue",
    { ["Authorization"] = "Bearer " .. token }, "")
end

function response(status, headers, body)
  if status == 202 then accepted = accepted + 1
  elseif status >= 400 and status < 500 then rejected = rejected + 1
  else failed = failed + 1 end
end

function done(summary, latency, requests)
  local a, r, f = 0, 0, 0
  for _, t in ipairs(threads) do
    a = a + t:get("accepted"); r = r + t:get("rejected"); f = f + t:get("failed")
  end
  io.write(string.format('STATUS {"accepted": %d, "rejected": %d, "failed": %d}\n', a, r, f))
  io.write(string.format('LATENCY {"p50": %.3f, "p95": %.3f, "p99": %.3f, "max": %.3f}\n',
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end
