-- wrk script: valid fota check-ins, round-robin over the devices prepared by
-- prepare.py. Args: DEVICES_FILE ("<session token> <device id>" a line)
-- NTHREADS SEQ_BASE.
--
-- Thread t takes the devices whose line index i has i % NTHREADS == t, so no
-- two threads ever send for the same device; each device's seq starts at
-- SEQ_BASE + 1 and grows by one per request, so seq never repeats. Round
-- robin alone would not keep a device's seq increasing at the server: one
-- slow connection can hold a device's check-in while the other connections
-- go round and send that device's next one. So a device is busy from its
-- request until the answer naming it (the Director document echoes the
-- device id) and request() skips busy devices; run.sh gives each thread far
-- more devices than connections. The nonce is 128 random bits per request.
dofile(os.getenv("FOTA_BENCH_LUA") .. "/summary.lua")

local devices = {}
local by_id = {}
local idx = 0
local rnd = math.random

local BODY = '{"nonce":"%04x%04x%04x%04x%04x%04x%04x%04x","seq":%d,' ..
   '"running":{"version":"1.0.0","security_counter":1,"slot":0},' ..
   '"slots":[{"slot":0,"version":"1.0.0","state":"confirmed"},' ..
   '{"slot":1,"version":null,"state":"empty"}]}'

function init(args)
   local file, nthreads, seq_base = args[1], tonumber(args[2]), tonumber(args[3])
   -- args[4] == "close": one connection per check-in, as a device that
   -- connects for each poll (run.sh NEW_CONNECTION=1)
   local conn = args[4] == "close" and "\r\nConnection: close" or ""
   local f = assert(io.open("/dev/urandom", "rb"))
   local s = f:read(4)
   f:close()
   math.randomseed(s:byte(1) * 16777216 + s:byte(2) * 65536 + s:byte(3) * 256 + s:byte(4) + tid)
   local host = wrk.headers["Host"]
   local i = 0
   for line in io.lines(file) do
      local token, id = string.match(line, "^(%S+) (%x+)$")
      assert(token, "bad line in " .. file)
      if i % nthreads == tid then
         local d = {
            head = "POST /device/v1/checkin HTTP/1.1\r\nHost: " .. host ..
               "\r\nAuthorization: Bearer " .. token .. conn ..
               "\r\nContent-Type: application/json\r\nContent-Length: ",
            seq = seq_base, busy = false }
         table.insert(devices, d)
         by_id[id] = d
      end
      i = i + 1
   end
   assert(#devices > 0, "no devices for thread " .. tid)
end

function request()
   local d
   for _ = 1, #devices do
      idx = idx % #devices + 1
      d = devices[idx]
      if not d.busy then
         break
      end
   end
   if d.busy then
      -- Every device waits for an answer (only after many errors): sending
      -- anyway could replay a seq, so count it as a wrong answer instead.
      note_bad(0, "no idle device")
   end
   d.busy = true
   d.seq = d.seq + 1
   local body = string.format(BODY, rnd(0, 65535), rnd(0, 65535), rnd(0, 65535), rnd(0, 65535),
                              rnd(0, 65535), rnd(0, 65535), rnd(0, 65535), rnd(0, 65535), d.seq)
   return d.head .. #body .. "\r\n\r\n" .. body
end

function response(status, headers, body)
   local d = by_id[string.match(body, '"device":"(%x+)"') or ""]
   if status ~= 200 or d == nil or not string.find(body, '"_type":"director"', 1, true) then
      note_bad(status, body)     -- a device not named stays busy: never reused
      return
   end
   d.busy = false
end
