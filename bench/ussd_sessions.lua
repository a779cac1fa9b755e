-- wrk script: Africa's Talking USSD sessions against POST /ussd/africastalking.
--
-- Why a script and not a fixed request: a USSD gateway never sends the same
-- request twice. Each session has a fresh sessionId and phone number, and
-- `text` grows by one input per hop ("" , "1", "1*1", ...), each hop sent only
-- after the answer to the previous one. A server that keeps per-session or
-- per-phone state (ours does) must be loaded the way the gateway loads it.
--
-- Run one connection per thread (-t32 -c32): every wrk thread has its own Lua
-- state, so one connection per thread keeps that connection's hops in order.
--
--   wrk -t32 -c32 -d20s --latency -s bench/ussd_sessions.lua \
--       http://127.0.0.1:8000/ussd/africastalking -- RUNTAG PHONEBASE
--
-- RUNTAG (default "run") goes into every sessionId and PHONEBASE (default
-- 9779800000000) is the first phone number, so two runs against the same
-- server (warm-up, then measurement) never reuse a session or a phone.
-- done() prints one line "USSD_BENCH_JSON {...}" for scripts to parse.

local HOPS = { "", "1", "1*1", "1*1*3", "1*1*3*98", "1*1*3*98*0", "1*1*3*98*0*00" }

-- Phone numbers: PHONEBASE + thread * PER_THREAD + n, unique across threads
-- (run_ussd.py keeps its warm-up and measured ranges 50,000,000 apart, room
-- for 500 threads).
local PER_THREAD = 100000

-- Main state only (setup/done): every thread, to read its counters at the end.
local threads = {}
local next_tid = 0

function setup(thread)
   thread:set("tid", next_tid)
   next_tid = next_tid + 1
   table.insert(threads, thread)
end

-- Thread state from here on.
local function url_encode(s)
   return (s:gsub("[^%w%-%._~]", function(c)
      return string.format("%%%02X", string.byte(c))
   end))
end

local function new_session()
   sessions_started = sessions_started + 1
   local n = sessions_started
   session_id = string.format("ATUid_%s_%d_%d", run_tag, tid, n)
   phone = string.format("%.0f", phone_base + tid * PER_THREAD + (n % PER_THREAD))
   hop = 1
end

function init(args)
   run_tag = args[1] or "run"
   phone_base = tonumber(args[2]) or 9779800000000
   sessions_started = 0
   sessions_completed = 0
   responses = 0
   non200 = 0
   bad_prefix = 0
   ended_early = 0
   wrong_first_screen = 0
   wrk.method = "POST"
   wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
   new_session()
end

function request()
   local body = "sessionId=" .. url_encode(session_id)
      .. "&serviceCode=" .. url_encode("*384*1234#")
      .. "&phoneNumber=" .. url_encode("+" .. phone)
      .. "&networkCode=99999"
      .. "&text=" .. url_encode(HOPS[hop])
   return wrk.format(nil, nil, nil, body)
end

function response(status, headers, body)
   responses = responses + 1
   if status ~= 200 then
      non200 = non200 + 1
      new_session()
      return
   end
   local prefix = string.sub(body or "", 1, 4)
   if prefix ~= "CON " and prefix ~= "END " then
      bad_prefix = bad_prefix + 1
      new_session()
      return
   end
   -- A fresh phone number must be offered the language list first.
   if hop == 1 and not string.find(body, "English", 1, true) then
      wrong_first_screen = wrong_first_screen + 1
   end
   if prefix == "END " then
      -- Every screen on this walk continues; an END cuts the session short.
      ended_early = ended_early + 1
      new_session()
      return
   end
   hop = hop + 1
   if hop > #HOPS then
      sessions_completed = sessions_completed + 1
      new_session()
   end
end

function done(summary, latency, requests)
   local totals = {
      sessions_started = 0, sessions_completed = 0, responses = 0,
      non200 = 0, bad_prefix = 0, ended_early = 0, wrong_first_screen = 0,
   }
   for _, thread in ipairs(threads) do
      for name, _ in pairs(totals) do
         totals[name] = totals[name] + (thread:get(name) or 0)
      end
   end
   local e = summary.errors
   local seconds = summary.duration / 1e6
   local fields = {
      string.format('"requests": %d', summary.requests),
      string.format('"duration_s": %.3f', seconds),
      string.format('"requests_per_s": %.1f', summary.requests / seconds),
      string.format('"bytes": %d', summary.bytes),
      string.format('"socket_errors": {"connect": %d, "read": %d, "write": %d, "timeout": %d}',
                    e.connect, e.read, e.write, e.timeout),
      string.format('"status_errors": %d', e.status),
      string.format('"latency_ms": {"mean": %.3f, "stdev": %.3f, "max": %.3f, "p50": %.3f, "p90": %.3f, "p99": %.3f}',
                    latency.mean / 1000, latency.stdev / 1000, latency.max / 1000,
                    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
                    latency:percentile(99) / 1000),
   }
   for name, value in pairs(totals) do
      table.insert(fields, string.format('"%s": %d', name, value))
   end
   io.write("USSD sessions: ", totals.sessions_completed, " completed of ",
            totals.sessions_started, " started; non-200: ", totals.non200,
            "; not CON/END: ", totals.bad_prefix, "; ended early: ",
            totals.ended_early, "; first screen without English: ",
            totals.wrong_first_screen, "\n")
   io.write("USSD_BENCH_JSON {", table.concat(fields, ", "), "}\n")
end
