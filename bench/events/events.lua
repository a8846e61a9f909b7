-- wrk script: POST one distinct product event per request; record the acknowledged bodies.
-- Environment: TARGET_PATH, AUTH (Authorization header value, may be empty), PREFIX, ACKED_OUT.
acked = {}
local index = 0
local path
local headers
local prefix
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  path = os.getenv("TARGET_PATH")
  prefix = os.getenv("PREFIX")
  headers = {["Content-Type"] = "application/json"}
  local auth = os.getenv("AUTH")
  if auth ~= nil and auth ~= "" then
    headers["Authorization"] = auth
  end
end

function request()
  index = index + 1
  local body = '{"event_type":"button_click","event_id":"' .. prefix .. "-" .. index ..
    '","properties":{"plan":"pro","seats":' .. (index % 50) ..
    ',"path":"/checkout/payment","button":"buy-now","experiment":"green-button","variant":"b"}}'
  return wrk.format("POST", path, headers, body)
end

function response(status, hdrs, body)
  if status == 201 then
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
