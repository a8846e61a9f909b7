-- wrk script: POST pre-built gzip envelopes (one distinct body per request), record acks.
-- Environment: BODIES (file of "<length>\n<bytes>" records), TARGET_PATH, SENTRY_AUTH, ACKED_OUT,
-- OFFSET (bodies already sent by earlier runs: this run starts after them, so that every
-- envelope is a new event and none is a retry the server drops).
local bodies = {}
acked = {}
local index = 0
local path
local headers
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  local f = assert(io.open(os.getenv("BODIES"), "rb"))
  local data = f:read("*a")
  f:close()
  local pos = 1
  while pos <= #data do
    local nl = data:find("\n", pos, true)
    local n = tonumber(data:sub(pos, nl - 1))
    bodies[#bodies + 1] = data:sub(nl + 1, nl + n)
    pos = nl + n + 1
  end
  index = tonumber(os.getenv("OFFSET") or "0")
  path = os.getenv("TARGET_PATH")
  headers = {
    ["Content-Type"] = "application/x-sentry-envelope",
    ["Content-Encoding"] = "gzip",
    ["X-Sentry-Auth"] = os.getenv("SENTRY_AUTH"),
  }
end

function request()
  index = index + 1
  return wrk.format("POST", path, headers, bodies[((index - 1) % #bodies) + 1])
end

function response(status, hdrs, body)
  if status == 200 then
    acked[#acked + 1] = body
  end
end

function done(summary, latency, requests)
  local out = assert(io.open(os.getenv("ACKED_OUT"), "wb"))
  for _, thread in ipairs(threads) do
    local list = thread:get("acked")
    for _, body in ipairs(list) do
      out:write(body, "\n")
    end
  end
  out:close()
end
