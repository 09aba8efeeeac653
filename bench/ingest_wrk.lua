-- wrk script for bench/ingest.py: distinct signed Shopify `orders/paid` deliveries.
-- args: <signatures file> <body prefix file> <body suffix file> <shop domain>
-- Each line of the signatures file is "<order id> <base64 HMAC of prefix..id..suffix>"; thread k
-- of n sends lines k, k+n, k+2n, ... so no two requests repeat a delivery (the file is sized for
-- the run; it wraps around only if the server is faster than the bench planned for).
local threads = {}

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

local function slurp(path)
  local f = assert(io.open(path, "rb"))
  local data = f:read("*a")
  f:close()
  return data
end

function init(args)
  ids, sigs = {}, {}
  for line in io.lines(args[1]) do
    local id, sig = line:match("^(%S+) (%S+)$")
    ids[#ids + 1] = id
    sigs[#sigs + 1] = sig
  end
  prefix, suffix, domain = slurp(args[2]), slurp(args[3]), args[4]
  step = tonumber(args[5])
  next_index = tid
end

function request()
  local k = (next_index % #ids) + 1
  next_index = next_index + step
  local id = ids[k]
  local headers = {
    ["Content-Type"] = "application/json",
    ["X-Shopify-Topic"] = "orders/paid",
    ["X-Shopify-Shop-Domain"] = domain,
    ["X-Shopify-Webhook-Id"] = "bench-webhook-" .. id,
    ["X-Shopify-Event-Id"] = "bench-event-" .. id,
    ["X-Shopify-API-Version"] = "2026-10",
    ["X-Shopify-Hmac-Sha256"] = sigs[k],
  }
  return wrk.format("POST", "/webhooks/shopify", headers, prefix .. id .. suffix)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests": %d, "duration_us": %d, "connect": %d, "read": %d, "write": %d, "status": %d, ' ..
    '"timeout": %d, "p50_us": %d, "p99_us": %d, "max_us": %d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
