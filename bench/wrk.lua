-- wrk script for bench/run.sh.
--
-- BENCH_MODE selects the requests:
--   static   wrk's own request (URL and -H headers); only done() below is used
--   tokens   each request carries the next link token from BENCH_TOKENS, never
--            reusing one; a thread that runs out starts over and done() reports it
--   garbage  requests cycle through the junk tokens in BENCH_TOKENS
--   api      each request creates a link through the issuing API, with the bearer key BENCH_API_KEY
-- BENCH_THREADS must equal wrk's -t: thread k takes lines k, k+t, k+2t, … of the file.
--
-- done() prints one line for run.sh to parse:
--   BENCH requests=… duration_us=… p50_us=… p99_us=… status_errors=… socket_errors=… tokens_reused=…
-- status_errors counts responses other than 2xx and 3xx.

local mode = os.getenv("BENCH_MODE") or "static"

-- api: every request creates a link through the issuing API (POST …/sign_in_tokens).
if mode == "api" then
	wrk.method = "POST"
	wrk.path = "/v1/sign_in_tokens"
	wrk.body = '{"user_id":"bench-user","expires_in_seconds":600}'
	wrk.headers["Content-Type"] = "application/json"
	wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_API_KEY")
end
local threads = {}

function setup(thread)
	thread:set("id", #threads)
	table.insert(threads, thread)
end

if mode == "tokens" or mode == "garbage" then
	local list, n, i = {}, 0, 0
	reused = 0

	function init(args)
		local path = os.getenv("BENCH_TOKENS")
		local step = tonumber(os.getenv("BENCH_THREADS"))
		local k = 0
		for line in io.lines(path) do
			if k % step == id then
				n = n + 1
				list[n] = line
			end
			k = k + 1
		end
		if n == 0 then
			error("no tokens for thread " .. id .. " in " .. path)
		end
	end

	function request()
		i = i + 1
		if i > n then
			i = 1
			if mode == "tokens" then
				reused = 1
			end
		end
		return wrk.format("GET", "/?token=" .. list[i])
	end
end

function done(summary, latency, requests)
	local reusedThreads = 0
	for _, t in ipairs(threads) do
		reusedThreads = reusedThreads + (t:get("reused") or 0)
	end
	local e = summary.errors
	io.write(string.format(
		"BENCH requests=%d duration_us=%d p50_us=%.0f p99_us=%.0f status_errors=%d socket_errors=%d tokens_reused=%d\n",
		summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
		e.status, e.connect + e.read + e.write + e.timeout, reusedThreads))
end
