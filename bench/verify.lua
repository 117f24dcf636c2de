-- wrk script for bench/verify.sh: 512-byte POSTs carrying GitHub's headers
-- (X-Hub-Signature-256 over the body, from the environment: SIG), each with
-- an X-GitHub-Delivery of its own (args[1] names the round, so a later
-- round is not a redelivery of an earlier one).  BAD=1: a wrong signature.
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
	local sig = os.getenv("SIG") or ""
	if os.getenv("BAD") == "1" then
		sig = "sha256=" .. string.rep("0", 64)
	end
	wrk.headers["X-Hub-Signature-256"] = sig
end

function request()
	n = n + 1
	wrk.headers["X-GitHub-Delivery"] = nonce .. "-" .. tid .. "-" .. n
	return wrk.format()
end
