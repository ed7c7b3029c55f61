-- Shared by the wrk scripts of bench/server/run.sh (loaded with dofile).
-- Each thread counts the answers it judges wrong in its globals `bad`,
-- `bad_status` and `bad_body`; done() adds them up and prints one line of
-- key=value pairs that run.sh parses.

bad = 0
bad_status = 0
bad_body = ""

local threads = {}

function setup(thread)
   thread:set("tid", #threads)
   table.insert(threads, thread)
end

-- Note one wrong answer (the first one's status and start of body are kept).
function note_bad(status, body)
   if bad == 0 then
      bad_status = status
      bad_body = string.sub(body or "", 1, 160)
   end
   bad = bad + 1
end

function done(summary, latency, requests)
   local nbad, status, body = 0, 0, ""
   for _, t in ipairs(threads) do
      local n = t:get("bad") or 0
      if n > 0 and nbad == 0 then
         status = t:get("bad_status")
         body = t:get("bad_body")
      end
      nbad = nbad + n
   end
   local e = summary.errors
   io.write(string.format(
      "wrk-result requests=%d duration_us=%d bytes=%d p50_us=%d p99_us=%d mean_us=%d max_us=%d " ..
      "connect=%d read=%d write=%d status=%d timeout=%d bad=%d bad_status=%d bad_body=%s\n",
      summary.requests, summary.duration, summary.bytes,
      latency:percentile(50), latency:percentile(99), latency.mean, latency.max,
      e.connect, e.read, e.write, e.status, e.timeout, nbad, status,
      (string.gsub(body, "[%s]", "_"))))
end
