-- wrk script for bench/verify.sh: 512-byte POSTs carrying GitHub's headers
-- (X-Hub-Signature-256 over the body, from the environment: SIG), each with
-- an X-GitHub-Delivery of its own (args[1] names the round, so a later
-- round is not a redelivery of an earlier one).  BAD=1: a wrong signature.
-- UUID=1: each X-GitHub-Delivery a random version 4 UUID instead, as GitHub
-- sends them (random keys: every insert lands on a random index page).
local threads = 0
function setup(thread)
	threads = threads + 1
	thread:set("tid", threads)
end

function init(args)
	nonce = args[1] or "r"
	n = 0
	wrk.method = "POST"
	wrk.body = string.rep("x", 500) .. "0123456789ab"
	wrk.headers["Content-Type"] = "application/octet-stream"
	wrk.headers["X-GitHub-Event"] = "push"
	uuid = os.getenv("UUID") == "1"
	if uuid then
		-- Each thread its own sequence, different in each round.
		local seed = tid
		for i = 1, #nonce do
			seed = (seed * 31 + nonce:byte(i)) % 2147483647
		end
		math.randomseed(seed)
	end
	local sig = os.getenv("SIG") or ""
	if os.getenv("BAD") == "1" then
		sig = "sha256=" .. string.rep("0", 64)
	end
	wrk.headers["X-Hub-Signature-256"] = sig
end

local function uuid4()
	local r = math.random
	return string.format("%08x-%04x-4%03x-%04x-%04x%08x", r(0, 0xffffffff),
	    r(0, 0xffff), r(0, 0xfff), 0x8000 + r(0, 0x3fff), r(0, 0xffff),
	    r(0, 0xffffffff))
end

function request()
	n = n + 1
	if uuid then
		wrk.headers["X-GitHub-Delivery"] = uuid4()
	else
		wrk.headers["X-GitHub-Delivery"] = nonce .. "-" .. tid .. "-" .. n
	end
	return wrk.format()
end
