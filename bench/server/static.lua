-- wrk script: GET one static file; every answer must be 200 with the
-- expected length (args: the length in bytes; 0 = do not look at bodies,
-- for large files whose buffering would cost wrk more than the server).
-- A second argument "close" asks for a new connection per request.
-- Usage: wrk ... -s static.lua URL -- LENGTH [close]
dofile(os.getenv("FOTA_BENCH_LUA") .. "/summary.lua")

local want_len = 0

function init(args)
   want_len = tonumber(args[1]) or 0
   if args[2] == "close" then
      wrk.headers["Connection"] = "close"
   end
   if want_len == 0 then
      response = nil     -- wrk then neither keeps headers nor bodies
   end
end

function response(status, headers, body)
   if status ~= 200 or #body ~= want_len then
      note_bad(status, body)
   end
end
