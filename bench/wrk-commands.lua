-- Load on a running `isa-ledger serve` with wrk (https://github.com/wg/wrk): every
-- request POSTs one domain command to /v1/commands (a breach detected, each on a
-- stream of its own), as `isa-ledger bench --http` does, but from a load generator
-- that costs the two cores about a third as much CPU per request.
--
--   TOKEN=isa_... wrk -t2 -c64 -d10s --latency -s bench/wrk-commands.lua http://127.0.0.1:8080
--
-- TOKEN is a practitioner's or DPO's token of the partner named below (`police` in the
-- demo partnership). Any answer but 201 counts in wrk's "Non-2xx or 3xx responses";
-- the summary line printed at the end says how many there were.

local partner = os.getenv("PARTNER") or "police"
local token = os.getenv("TOKEN") or error("set TOKEN to a practitioner's or DPO's API token")
-- Keeps the streams of different runs (and threads) apart.
local run = os.getenv("RUN") or tostring(os.time())
local headers = { ["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json" }

local next_thread = 0
function setup(thread)
  thread:set("thread_id", next_thread)
  next_thread = next_thread + 1
end

local sent = 0
function request()
  sent = sent + 1
  local body = string.format(
    '{"stream":"breach/wrk-%s-%d-%d","by":{"partner":"%s","user":"bench","role":"data-protection-officer"},'
      .. '"at":"2025-10-01T10:00:00Z","type":"BreachDetected","became_aware_at":"2025-10-01T09:00:00Z",'
      .. '"nature":["availability"],"data_categories":["personal"],"subject_categories":["staff"],'
      .. '"approximate_subjects":1,"approximate_records":1}',
    run, thread_id, sent, partner)
  return wrk.format("POST", "/v1/commands", headers, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("%d requests in %.2f s: %.0f appends/s; not 201: %d; socket errors: connect %d, read %d, write %d, timeout %d\n",
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    e.status, e.connect, e.read, e.write, e.timeout))
  io.write(string.format("latency ms: p50 %.1f, p90 %.1f, p99 %.1f, max %.1f\n",
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000))
end
