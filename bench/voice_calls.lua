-- wrk script: Twilio voice calls against POST /voice/twilio, step by step.
--
-- Each connection places calls one after another: a fresh CallSid and number,
-- then the keys a caller presses (language, a menu, a submenu, an article,
-- back, main menu), each sent with the `s` (step) the previous answer asked
-- for, then the status callback that ends the call. One connection per wrk
-- thread keeps every call's steps in order.
--
--   wrk -t16 -c16 -d20s --latency -s bench/voice_calls.lua \
--       http://127.0.0.1:8000 -- RUNTAG
--
-- done() prints "VOICE_BENCH_JSON {...}".

local STEPS = {
   { "/voice/twilio", "" },
   { "/voice/twilio?s=0", "1" },
   { "/voice/twilio?s=1", "1" },
   { "/voice/twilio?s=2", "1" },
   { "/voice/twilio?s=3", "0" },
   { "/voice/twilio?s=4", "00" },
   { "/voice/twilio/status", "end" },
}
local PER_THREAD = 100000
local threads = {}
local next_tid = 0

function setup(thread)
   thread:set("tid", next_tid)
   next_tid = next_tid + 1
   table.insert(threads, thread)
end

local function new_call()
   calls_started = calls_started + 1
   call_sid = string.format("CA%s%08d%06d", run_tag, tid, calls_started)
   phone = string.format("+97798%07d", tid * PER_THREAD + (calls_started % PER_THREAD))
   step = 1
end

function init(args)
   run_tag = args[1] or "run"
   calls_started, calls_completed, responses, non200, not_twiml = 0, 0, 0, 0, 0
   wrk.method = "POST"
   wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
   new_call()
end

function request()
   local path, digits = STEPS[step][1], STEPS[step][2]
   local body = "CallSid=" .. call_sid .. "&From=" .. phone:gsub("+", "%%2B")
      .. "&To=%2B15005550006&Direction=inbound&AccountSid=ACbench"
   if digits == "end" then
      body = body .. "&CallStatus=completed&CallDuration=60"
   else
      body = body .. "&CallStatus=in-progress"
      if digits ~= "" then body = body .. "&Digits=" .. digits end
   end
   return wrk.format(nil, path, nil, body)
end

function response(status, headers, body)
   responses = responses + 1
   if status ~= 200 then
      non200 = non200 + 1
      new_call()
      return
   end
   if not string.find(body or "", "<Response", 1, true) then
      not_twiml = not_twiml + 1
   end
   step = step + 1
   if step > #STEPS then
      calls_completed = calls_completed + 1
      new_call()
   end
end

function done(summary, latency, requests)
   local totals = { calls_started = 0, calls_completed = 0, responses = 0, non200 = 0,
                    not_twiml = 0 }
   for _, thread in ipairs(threads) do
      for name, _ in pairs(totals) do
         totals[name] = totals[name] + (thread:get(name) or 0)
      end
   end
   local seconds = summary.duration / 1e6
   local fields = {
      string.format('"requests": %d', summary.requests),
      string.format('"requests_per_s": %.1f', summary.requests / seconds),
      string.format('"socket_errors": %d', summary.errors.connect + summary.errors.read
                    + summary.errors.write + summary.errors.timeout),
      string.format('"latency_ms": {"p50": %.3f, "p90": %.3f, "p99": %.3f, "max": %.3f}',
                    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
                    latency:percentile(99) / 1000, latency.max / 1000),
   }
   for name, value in pairs(totals) do
      table.insert(fields, string.format('"%s": %d', name, value))
   end
   io.write("VOICE_BENCH_JSON {", table.concat(fields, ", "), "}\n")
end
