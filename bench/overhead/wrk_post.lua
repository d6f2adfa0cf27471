-- wrk script for the overhead benchmark: POSTs one JSON body and, at the end, prints
-- one line "WRKJSON {...}" with counts and latency percentiles (microseconds).
--   BENCH_BODY     request body (default: a small non-streaming chat completion)
--   BENCH_HEADERS  extra headers, "Name: value" items separated by "|" (e.g. the key)
local body = os.getenv("BENCH_BODY")
if body == nil or body == "" then
  body = '{"model":"mock-gpt","messages":[{"role":"user","content":"Say hello"}],"max_tokens":32}'
end
wrk.method = "POST"
wrk.body = body
wrk.headers["Content-Type"] = "application/json"

local extra = os.getenv("BENCH_HEADERS")
if extra ~= nil and extra ~= "" then
  for item in string.gmatch(extra, "[^|]+") do
    local name, value = string.match(item, "^%s*([^:]+):%s*(.-)%s*$")
    if name ~= nil then
      wrk.headers[name] = value
    end
  end
end

-- Answers with status >= 400 are counted by wrk itself (err_status); no response()
-- hook, which would make wrk parse every response in Lua and slow the baseline down.
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"err_connect":%d,"err_read":%d,"err_write":%d,"err_status":%d,"err_timeout":%d,' ..
    '"mean_us":%.1f,"max_us":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency.max,
    latency:percentile(50), latency:percentile(90), latency:percentile(99)))
end
