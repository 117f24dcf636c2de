-- wrk script: 512-byte POSTs.  Errors show in wrk's "Non-2xx or 3xx
-- responses" line, which the bench reads.
wrk.method = "POST"
wrk.body = string.rep("x", 500) .. "0123456789ab"
wrk.headers["Content-Type"] = "application/octet-stream"
