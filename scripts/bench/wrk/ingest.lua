-- Sends pre-signed webhook deliveries, one per line of the file named by REQUESTS_FILE:
-- "<header>: <value>\t<header>: <value>..." (headers only; the body is the same for all).
-- Thread i of WRK_THREADS sends lines i, i + WRK_THREADS, ... so no two requests share a
-- delivery id while the file lasts, and non-2xx answers are counted so the summary reports
-- acknowledged requests only.
local lines = {}
local body
local index = 0
local step = 1
failures = 0 -- globals: done() reads them through thread:get
local threads = {}

function setup(thread)
  thread:set("offset", #threads)
  table.insert(threads, thread)
end

wrapped = 0

function init(args)
  for line in io.lines(os.getenv("REQUESTS_FILE")) do
    table.insert(lines, line)
  end
  local file = io.open(os.getenv("BODY_FILE"), "rb")
  body = file:read("*a")
  file:close()
  index = offset - tonumber(os.getenv("WRK_THREADS"))
  step = tonumber(os.getenv("WRK_THREADS"))
end

function request()
  local headers = { ["Content-Type"] = "application/json" }
  -- An empty file (the ceiling) sends the body alone.
  if #lines == 0 then
    return wrk.format("POST", nil, headers, body)
  end
  index = index + step
  if index >= #lines then
    wrapped = 1
  end
  local line = lines[(index % #lines) + 1]
  for name, value in line:gmatch("([^\t:]+): ([^\t]+)") do
    headers[name] = value
  end
  return wrk.format("POST", nil, headers, body)
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    failures = failures + 1
  end
end

function done(summary, latency, requests)
  local failed, repeated = 0, 0
  for _, thread in ipairs(threads) do
    failed = failed + thread:get("failures")
    repeated = repeated + thread:get("wrapped")
  end
  if repeated > 0 then
    io.write("warning: the request file ran out, later requests were duplicates\n")
  end
  local ok = summary.requests - failed
  io.write(string.format(
    "acknowledged %d in %.2f s: %.0f/s; p50 %.2f ms, p99 %.2f ms, max %.2f ms; non-2xx %d; socket errors %d\n",
    ok, summary.duration / 1e6, ok / (summary.duration / 1e6),
    latency:percentile(50) / 1e3, latency:percentile(99) / 1e3, latency.max / 1e3,
    failed, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
