#!/usr/bin/env bash
# bench/run.sh measures magiclink against the performance targets in the README: the gateway
# over HTTP (one Caddy, four sites, wrk), one-time links against Redis (two more Caddy instances
# on one redis-server: redemptions with wrk, revocation propagation), bulk signing with the CLI,
# and the in-process Go benchmarks. It stops by itself; see bench/README.md.
set -eEuo pipefail

DURATION=${DURATION:-5}        # seconds per wrk run
CONNS=${CONNS:-16}             # wrk connections
THREADS=${THREADS:-2}          # wrk threads
ROUNDS=${ROUNDS:-4}            # rounds per pair of scenarios
ROWS=${ROWS:-1000000}          # CSV rows for the bulk-signing measurement
TOKEN_RATE=${TOKEN_RATE:-40000} # link tokens prepared per second of each redemption run
BASE_PORT=${BASE_PORT:-18080}  # the sites, admin endpoints and Redis listen on BASE_PORT+1 … BASE_PORT+9
BENCHTIME=${BENCHTIME:-1s}     # go test -benchtime
BENCH_COUNT=${BENCH_COUNT:-3}  # go test -count
PAIRS=${PAIRS:-5}              # back-to-back runs of each redemption benchmark and its raw baseline
REVOCATIONS=${REVOCATIONS:-100} # revocations timed from instance A to instance B
GOBENCH=${GOBENCH:-Verify|Reject|Redeem|Garbage|Malformed|Oversize|Session|Cookie}

AUD=https://bench.example

PROG=bench
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

for v in DURATION CONNS THREADS ROUNDS ROWS TOKEN_RATE BASE_PORT BENCH_COUNT PAIRS REVOCATIONS; do
	[[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive whole number, got '${!v}'"
done
((CONNS >= THREADS)) || die "CONNS ($CONNS) must be at least THREADS ($THREADS)"
((BASE_PORT + 12 <= 65535)) || die "BASE_PORT ($BASE_PORT) leaves no room for twelve ports"

cd "$(dirname "${BASH_SOURCE[0]}")/.."
WORK=$(mktemp -d "${TMPDIR:-/tmp}/magiclink-bench.XXXXXX")
# The background processes: the Caddy of scenarios 1-4, instances A and B of
# bench/redis.Caddyfile, and their redis-server.
# shellcheck disable=SC2034 # CADDY_B_PID is set and read by name, in start_caddy and stop
CADDY_PID='' CADDY_A_PID='' CADDY_B_PID='' CADDY_F_PID='' REDIS_PID=''

# stop VAR stops the process whose id the variable VAR holds, if any, and clears VAR.
stop() {
	local pid=${!1}
	if [[ -n $pid ]]; then
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
		printf -v "$1" '%s' ''
	fi
}
stop_caddy() { stop CADDY_PID; }
cleanup() {
	local rc=$?
	stop CADDY_PID
	stop CADDY_A_PID
	stop CADDY_B_PID
	stop CADDY_F_PID
	stop REDIS_PID
	rm -f "$WORK"/rows*.csv "$WORK"/out*.csv "$WORK"/tokens*.csv "$WORK"/tokens-*.txt "$WORK/garbage.txt" \
		"$WORK/body" "$WORK/caddy" "$WORK/magiclink" "$WORK/propagation" "$WORK"/key.*
	rm -rf "$WORK"/caddy-storage* "$WORK/xdg-config" "$WORK/xdg-data"
	if ((rc != 0)); then
		echo "bench: failed (exit $rc); logs are in $WORK" >&2
	fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'echo "bench: command failed at run.sh line $LINENO: $BASH_COMMAND" >&2' ERR

# gen_rows N FILE writes a CSV of N users: sub,email,name.
gen_rows() {
	awk -v n="$1" 'BEGIN {
		print "sub,email,name"
		for (i = 1; i <= n; i++) printf "user%07d,user%07d@example.com,User %d\n", i, i, i
	}' >"$2"
}

# median reads numbers, one a line, and prints their median.
median() {
	sort -g | awk '{ v[NR] = $1 } END {
		if (NR == 0) exit 1
		if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2
	}'
}

step "setup (work dir $WORK)"
need wrk wrk
need curl curl
need /usr/bin/time time
need redis-server redis-server
need redis-cli redis-tools
go build -o "$WORK/caddy" ./cmd/caddy
go build -o "$WORK/magiclink" ./cmd/magiclink
go build -o "$WORK/propagation" ./bench/propagation
modules=$("$WORK/caddy" list-modules)
grep -qx 'http.handlers.magic_link' <<<"$modules" || die "cmd/caddy does not include http.handlers.magic_link: import the caddymodule package in cmd/caddy/main.go"
ML=$WORK/magiclink
kid=$("$ML" keygen --out "$WORK/key" | awk '$1 == "kid:" { print $2 }')
[[ -n $kid ]] || die "magiclink keygen printed no kid"
echo "built caddy, magiclink and bench/propagation; key id $kid; $(redis-server --version | cut -d' ' -f1-3)"

# Link tokens for scenario 3: DURATION*TOKEN_RATE fresh ones per round.
per_round=$((DURATION * TOKEN_RATE))
gen_rows $((per_round * ROUNDS)) "$WORK/rows-tokens.csv"
# sign_rounds NAME signs rows-tokens.csv into NAME.csv and splits its tokens into NAME-1.txt …
# NAME-ROUNDS.txt, per_round each.
sign_rounds() {
	local r got
	"$ML" sign --key "$WORK/key.private.jwk" --csv "$WORK/rows-tokens.csv" --aud "$AUD" >"$WORK/$1.csv"
	awk -F, -v n="$per_round" -v base="$WORK/$1" 'NR > 1 { print $4 > (base "-" (int((NR - 2) / n) + 1) ".txt") }' "$WORK/$1.csv"
	for ((r = 1; r <= ROUNDS; r++)); do
		got=$(wc -l <"$WORK/$1-$r.txt")
		((got == per_round)) || die "$1-$r.txt has $got link tokens, want $per_round"
	done
}
sign_rounds tokens
echo "signed $((per_round * ROUNDS)) link tokens for scenario 3 ($per_round per round)"

# Link tokens for scenario 5, a set of their own: its site treats every link as one-time, so a
# token can be redeemed there only once. Then the links whose revocation is timed.
sign_rounds tokens-once
gen_rows "$REVOCATIONS" "$WORK/rows-revoke.csv"
"$ML" sign --key "$WORK/key.private.jwk" --csv "$WORK/rows-revoke.csv" --aud "$AUD" | awk -F, 'NR > 1 { print $4 }' >"$WORK/tokens-revoke.txt"
echo "signed $((per_round * ROUNDS)) link tokens for scenario 5 and $REVOCATIONS for the revocations"

# Junk tokens for scenario 4, in four kinds: random segments as long as a real
# token's, one random blob without dots, an oversize token (> 4096 bytes), and a
# real payload under a header naming the wrong algorithm for the key.
sample=$(head -n 1 "$WORK/tokens-1.txt")
bad_header=$(printf '{"alg":"HS256","kid":"%s","typ":"magic-link+jwt"}' "$kid" | base64 -w0 | tr '+/' '-_' | tr -d '=')
awk -v n=1000 -v real="$sample" -v hdr="$bad_header" '
	function junk(len,   s, j) {
		s = ""
		for (j = 0; j < len; j++) s = s substr(chars, int(rand() * 64) + 1, 1)
		return s
	}
	BEGIN {
		srand(42)
		chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
		split(real, seg, ".")
		for (i = 0; i < n; i++) {
			k = i % 4
			if (k == 0) print junk(length(seg[1])) "." junk(length(seg[2])) "." junk(length(seg[3]))
			else if (k == 1) print junk(length(real))
			else if (k == 2) print junk(1800) "." junk(2600) "." junk(86)
			else print hdr "." seg[2] "." junk(86)
		}
	}' >"$WORK/garbage.txt"

# Sites 1-4 of bench.Caddyfile; site 5 on instance A and the same site on instance B of
# redis.Caddyfile, with their admin endpoints; their redis-server.
P1=$((BASE_PORT + 1)) P2=$((BASE_PORT + 2)) P3=$((BASE_PORT + 3)) P4=$((BASE_PORT + 4))
P5=$((BASE_PORT + 5)) PB=$((BASE_PORT + 6)) ADMIN_A=$((BASE_PORT + 7)) ADMIN_B=$((BASE_PORT + 8))
PR=$((BASE_PORT + 9)) PAPI_A=$((BASE_PORT + 10)) PAPI_B=$((BASE_PORT + 11)) PAPI_F=$((BASE_PORT + 12))
for ((p = BASE_PORT + 1; p <= BASE_PORT + 12; p++)); do
	# A connection that succeeds means something listens there already.
	if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
		die "127.0.0.1:$p is taken; the run needs BASE_PORT+1 … BASE_PORT+12 ($((BASE_PORT + 1))-$((BASE_PORT + 12))): set BASE_PORT"
	fi
done
SECRET=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
API_KEY=sk_bench_$(od -An -tx1 -N24 /dev/urandom | tr -d ' \n')

# start_caddy VAR LOG PORT CONFIG [NAME=VALUE...] runs caddy with CONFIG and the environment
# additions in the background, keeps its process id in the variable VAR, and waits until the site
# on PORT answers a request without a session with 401.
start_caddy() {
	local var=$1 log=$2 port=$3 config=$4 pid i
	shift 4
	env "$@" BENCH_DIR="$WORK" BENCH_KEYS="$WORK/key.public.jwks" BENCH_SESSION_SECRET="$SECRET" \
		BENCH_PRIVATE_KEY="$WORK/key.private.jwk" BENCH_API_KEY="$API_KEY" \
		XDG_CONFIG_HOME="$WORK/xdg-config" XDG_DATA_HOME="$WORK/xdg-data" \
		"$WORK/caddy" run --config "$config" --adapter caddyfile >"$log" 2>&1 &
	pid=$!
	printf -v "$var" '%s' "$pid"
	for ((i = 0; ; i++)); do
		kill -0 "$pid" 2>/dev/null || {
			tail -n 5 "$log" >&2
			printf -v "$var" '%s' ''
			die "caddy ($config) exited at start; log: $log"
		}
		[[ $(curl -s -m 1 "http://127.0.0.1:$port/" -o /dev/null -w '%{http_code}' || true) == 401 ]] && break
		((i < 100)) || die "caddy ($config) did not answer on 127.0.0.1:$port within 10s; log: $log"
		sleep 0.1
	done
}

step "starting redis-server on 127.0.0.1:$PR, caddy on 127.0.0.1:$P1-$P4, instances A and B on $P5 and $PB"
redis-server --bind 127.0.0.1 --port "$PR" --save '' --appendonly no --dir "$WORK" \
	--logfile "$WORK/redis.log" >/dev/null 2>&1 &
REDIS_PID=$!
for ((i = 0; ; i++)); do
	kill -0 "$REDIS_PID" 2>/dev/null || {
		REDIS_PID=
		die "redis-server exited at start; log: $WORK/redis.log"
	}
	[[ $(redis-cli -p "$PR" ping 2>/dev/null || true) == PONG ]] && break
	((i < 100)) || die "redis-server did not answer on 127.0.0.1:$PR within 10s; log: $WORK/redis.log"
	sleep 0.1
done
start_caddy CADDY_PID "$WORK/caddy.log" "$P4" bench/bench.Caddyfile \
	BENCH_PORT_BARE="$P1" BENCH_PORT_COOKIE="$P2" BENCH_PORT_REDEEM="$P3" BENCH_PORT_GARBAGE="$P4"
start_caddy CADDY_A_PID "$WORK/caddy-a.log" "$P5" bench/redis.Caddyfile \
	BENCH_INSTANCE=a BENCH_PORT_ONCE="$P5" BENCH_ADMIN_PORT="$ADMIN_A" BENCH_REDIS_URL="redis://127.0.0.1:$PR" \
	BENCH_PORT_API="$PAPI_A"
start_caddy CADDY_B_PID "$WORK/caddy-b.log" "$PB" bench/redis.Caddyfile \
	BENCH_INSTANCE=b BENCH_PORT_ONCE="$PB" BENCH_ADMIN_PORT="$ADMIN_B" BENCH_REDIS_URL="redis://127.0.0.1:$PR" \
	BENCH_PORT_API="$PAPI_B"

# status URL [curl args...] prints the HTTP status of a GET.
status() {
	local url=$1
	shift
	curl -s -m 5 -o "$WORK/body" -w '%{http_code}' "$@" "$url" || true
}

# A session cookie: redeem a link on site 2 and keep its Set-Cookie.
check=$("$ML" sign --key "$WORK/key.private.jwk" --sub bench-user --email bench@example.com --name Bench --aud "$AUD")
code=$(status "http://127.0.0.1:$P2/?token=$check" -D "$WORK/redeem-headers")
[[ $code == 303 ]] || die "redeeming a link on site 2 answered $code, want 303; log: $WORK/caddy.log"
cookie=$(tr -d '\r' <"$WORK/redeem-headers" | awk 'tolower($1) == "set-cookie:" { sub(/^[^:]*: */, ""); sub(/;.*/, ""); print; exit }')
[[ $cookie == *=?* ]] || die "redeeming a link on site 2 set no session cookie; log: $WORK/caddy.log"
rm -f "$WORK/redeem-headers"
code=$(status "http://127.0.0.1:$P2/" -H "Cookie: $cookie")
[[ $code == 200 && $(<"$WORK/body") == ok ]] || die "site 2 with the session cookie answered $code, want 200 ok"
code=$(status "http://127.0.0.1:$P2/")
[[ $code == 401 ]] || die "site 2 without a cookie answered $code, want 401"
code=$(status "http://127.0.0.1:$P1/" -H "Cookie: $cookie")
[[ $code == 200 ]] || die "site 1 answered $code, want 200"
check=$("$ML" sign --key "$WORK/key.private.jwk" --sub bench-check --aud "$AUD")
code=$(status "http://127.0.0.1:$P3/?token=$check")
[[ $code == 303 ]] || die "a link token on site 3 answered $code, want 303"
for i in 1 2 3 4; do
	code=$(status "http://127.0.0.1:$P4/?token=$(sed -n "${i}p" "$WORK/garbage.txt")")
	[[ $code == 401 ]] || die "junk token kind $i on site 4 answered $code, want 401"
done
echo "got a session cookie; sites answer 200, 200 with the cookie, 303 to a link, 401 to junk"
# A one-time link works once, on A, and is then used up on both instances.
check=$("$ML" sign --key "$WORK/key.private.jwk" --sub bench-once --aud "$AUD")
code=$(status "http://127.0.0.1:$P5/?token=$check")
[[ $code == 303 ]] || die "a link token on site 5 (instance A) answered $code, want 303; log: $WORK/caddy-a.log"
code=$(status "http://127.0.0.1:$P5/?token=$check")
[[ $code == 401 ]] || die "a used link token on instance A answered $code, want 401"
code=$(status "http://127.0.0.1:$PB/?token=$check")
[[ $code == 401 ]] || die "a link token used on A answered $code on instance B, want 401; log: $WORK/caddy-b.log"
code=$(status "http://127.0.0.1:$ADMIN_A/magic_link/revocations")
[[ $code == 200 ]] || die "GET /magic_link/revocations on A's admin endpoint answered $code, want 200: $(<"$WORK/body")"
echo "a one-time link answers 303 once on A, then 401 on A and on B; A's admin API answers"

# run_wrk PAIR ROUND SCENARIO runs wrk once and appends
# "pair round scenario req/s p50_us p99_us socket_errors" to results.txt.
# shellcheck disable=SC2154 # requests, p50_us, … come from wrk's BENCH line (local $line)
run_wrk() {
	local pair=$1 round=$2 sc=$3 mode=static tokens='' port out line
	local -a hdr=()
	# Scenario 1 sends the same requests as the scenario it is paired with. Pair 5 pairs
	# scenario 5 with scenario 3: each redeems links of its own, scenario 3 those it redeemed in
	# pair 3 (a stateless redemption does not use a link up).
	case $pair in
	2) hdr=(-H "Cookie: $cookie") ;;
	3) mode=tokens tokens=$WORK/tokens-$round.txt ;;
	4) mode=garbage tokens=$WORK/garbage.txt ;;
	5)
		mode=tokens tokens=$WORK/tokens-$round.txt
		[[ $sc != 5 ]] || tokens=$WORK/tokens-once-$round.txt
		;;
	esac
	case $sc in
	1) port=$P1 ;;
	2) port=$P2 ;;
	3) port=$P3 ;;
	4) port=$P4 ;;
	5) port=$P5 ;;
	esac
	out=$WORK/wrk-pair$pair-round$round-scenario$sc.txt
	BENCH_MODE=$mode BENCH_TOKENS=$tokens BENCH_THREADS=$THREADS \
		wrk -t "$THREADS" -c "$CONNS" -d "${DURATION}s" --latency -s bench/wrk.lua "${hdr[@]}" \
		"http://127.0.0.1:$port/" >"$out" 2>&1 || die "wrk failed on scenario $sc; output: $out"
	kill -0 "$CADDY_PID" 2>/dev/null || die "caddy died during scenario $sc; log: $WORK/caddy.log"
	kill -0 "$CADDY_A_PID" 2>/dev/null || die "caddy instance A died during scenario $sc; log: $WORK/caddy-a.log"
	kill -0 "$REDIS_PID" 2>/dev/null || die "redis-server died during scenario $sc; log: $WORK/redis.log"
	line=$(grep '^BENCH ' "$out") || die "wrk printed no BENCH line on scenario $sc; output: $out"
	# shellcheck disable=SC2086 # the line is key=value words
	local $line
	((requests > 0)) || die "scenario $sc completed no requests; output: $out"
	((sc == 1 || tokens_reused == 0)) || die "scenario $sc ran out of link tokens (more than $TOKEN_RATE/s); raise TOKEN_RATE"
	if [[ $sc == 4 ]]; then
		((status_errors == requests)) || die "scenario 4: $((requests - status_errors)) of $requests junk requests were not rejected; output: $out"
	else
		# For scenario 5 this includes 401 used (a link redeemed twice) and 503 unavailable (Redis).
		((status_errors == 0)) || die "scenario $sc: $status_errors of $requests responses were not 2xx/3xx; output: $out"
	fi
	((socket_errors == 0)) || echo "warning: scenario $sc had $socket_errors socket errors; output: $out" >&2
	awk -v p="$pair" -v r="$round" -v s="$sc" -v n="$requests" -v d="$duration_us" \
		-v a="$p50_us" -v b="$p99_us" -v e="$socket_errors" \
		'BEGIN { printf "%s %s %s %.1f %s %s %s\n", p, r, s, n / d * 1e6, a, b, e }' >>"$WORK/results.txt"
	printf '  round %d scenario %d: %8.0f req/s\n' "$round" "$sc" "$(tail -n 1 "$WORK/results.txt" | cut -d' ' -f4)"
}

# base PAIR prints the baseline scenario of a pair: 3 (a stateless redemption) for pair 5, else 1.
base() { if [[ $1 == 5 ]]; then echo 3; else echo 1; fi; }

step "HTTP: wrk -t $THREADS -c $CONNS -d ${DURATION}s, $ROUNDS rounds per pair"
: >"$WORK/results.txt"
for pair in 2 3 4 5; do
	b=$(base "$pair")
	echo "pair $b/$pair"
	for ((r = 1; r <= ROUNDS; r++)); do
		# Odd rounds run the baseline first, even rounds second, so that neither side always
		# gets the first (or second) slot of a round.
		if ((r % 2)); then
			run_wrk "$pair" "$r" "$b"
			run_wrk "$pair" "$r" "$pair"
		else
			run_wrk "$pair" "$r" "$pair"
			run_wrk "$pair" "$r" "$b"
		fi
	done
done
stop_caddy

# api_rate PORT NAME creates links through the issuing API on PORT for DURATION seconds and sets
# api_rate (links/s); every answer must be a 200.
# shellcheck disable=SC2154 # requests, duration_us, … come from wrk's BENCH line (local $line)
api_rate() {
	local out=$WORK/wrk-api-$2.txt line
	BENCH_MODE=api BENCH_API_KEY=$API_KEY BENCH_THREADS=$THREADS \
		wrk -t "$THREADS" -c "$CONNS" -d "${DURATION}s" --latency -s bench/wrk.lua "http://127.0.0.1:$1/" >"$out" 2>&1 ||
		die "wrk failed on the issuing API ($2); output: $out"
	line=$(grep '^BENCH ' "$out") || die "wrk printed no BENCH line on the issuing API ($2); output: $out"
	# shellcheck disable=SC2086 # the line is key=value words
	local $line
	((requests > 0 && status_errors == 0 && socket_errors == 0)) ||
		die "the issuing API ($2) answered $status_errors of $requests creates with an error; output: $out"
	api_rate=$(awk -v n="$requests" -v us="$duration_us" 'BEGIN { printf "%.0f", n / us * 1e6 }')
}
# raw_sign_rate prints the raw Ed25519 signing rate of all cores: one 2-second run of
# BenchmarkRawEd25519SignParallel.
raw_sign_rate() {
	local out
	out=$(go test -run '^$' -bench '^BenchmarkRawEd25519SignParallel$' -benchtime 2s -count 1 ./cmd/magiclink/) ||
		die "the raw signing benchmark failed: $out"
	awk '/^BenchmarkRawEd25519SignParallel/ { for (i = 2; i < NF; i++) if ($(i + 1) == "signs/s") print $i }' <<<"$out"
}
# api_ratio PORT NAME measures the issuing API on PORT and the raw signing rate back to back,
# ROUNDS times in alternating order, so that both see the same moment of the machine, and sets
# api_ratio (the median of the ratios) and api_links (the median of the links/s).
api_ratio() {
	local r raw ratios=() rates=()
	for ((r = 1; r <= ROUNDS; r++)); do
		if ((r % 2)); then
			api_rate "$1" "$2-$r"
			raw=$(raw_sign_rate)
		else
			raw=$(raw_sign_rate)
			api_rate "$1" "$2-$r"
		fi
		[[ -n $raw ]] || die "no signs/s in the raw signing benchmark"
		rates+=("$api_rate")
		ratios+=("$(awk -v a="$api_rate" -v b="$raw" 'BEGIN { printf "%.4f", a / b }')")
		printf '  %s, round %d: %s links/s, raw %s signs/s\n' "$2" "$r" "$api_rate" "$raw"
	done
	api_ratio=$(printf '%s\n' "${ratios[@]}" | median)
	api_links=$(printf '%s\n' "${rates[@]}" | median | awk '{ printf "%.0f", $1 }')
}
step "issuing API: POST /v1/sign_in_tokens for ${DURATION}s against the raw signing rate, $ROUNDS rounds each: Redis store (instance A), then file store"
api_ratio "$PAPI_A" redis
api_redis=$api_links api_redis_ratio=$api_ratio
start_caddy CADDY_F_PID "$WORK/caddy-f.log" "$PAPI_F" bench/api-file.Caddyfile BENCH_PORT_API="$PAPI_F"
api_ratio "$PAPI_F" file
api_file=$api_links api_file_ratio=$api_ratio
stop CADDY_F_PID
echo "created $api_redis links/s with Redis, $api_file links/s with the file store (medians)"

used=$(redis-cli -p "$PR" --scan --pattern 'magic_link:used:*' | wc -l)
echo "Redis holds $used used-link records (scenario 5's redemptions and the check link)"

step "revocation propagation: $REVOCATIONS links redeemed on B, each revoked through A's admin API, B polled every 2ms"
"$WORK/propagation" -site "http://127.0.0.1:$PB/" -admin "127.0.0.1:$ADMIN_A" -tokens "$WORK/tokens-revoke.txt" \
	-n "$REVOCATIONS" -poll 2ms -wait 5s -max-timeouts 3 >"$WORK/propagation.txt" ||
	die "the propagation measurement failed; output: $WORK/propagation.txt, logs: $WORK/caddy-a.log $WORK/caddy-b.log"
prop=$(grep '^PROPAGATION ' "$WORK/propagation.txt") || die "bench/propagation printed no PROPAGATION line; output: $WORK/propagation.txt"
stop CADDY_A_PID
stop CADDY_B_PID
stop REDIS_PID

# col PAIR SCENARIO FIELD prints the median of a results.txt field over the runs of a scenario in a pair.
col() { awk -v p="$1" -v s="$2" -v f="$3" '$1 == p && $3 == s { print $f }' "$WORK/results.txt" | median; }
# ratio PAIR prints the median over rounds of (scenario PAIR req/s) / (its baseline's req/s that round).
ratio() {
	awk -v p="$1" -v s="$(base "$1")" '$1 == p && $3 == s { b[$2] = $4 } $1 == p && $3 == p { x[$2] = $4 }
		END { for (r in x) print x[r] / b[r] }' "$WORK/results.txt" | median
}
ms() { awk -v u="$1" 'BEGIN { printf "%.2fms", u / 1000 }'; }
verdict() { awk -v v="$1" -v t="$2" 'BEGIN { print (v >= t ? "PASS" : "FAIL") }'; }
# row PAIR SCENARIO LABEL [TARGET] prints one line of the HTTP table.
row() {
	local r=
	[[ $2 == "$(base "$1")" ]] || r=$(printf '%.3f' "$(ratio "$1")")
	printf '%-40s %9.0f %9s %9s %7s  %s\n' "$3" "$(col "$1" "$2" 4)" "$(ms "$(col "$1" "$2" 5)")" "$(ms "$(col "$1" "$2" 6)")" "$r" "${4:-}"
}

step "HTTP results (median of $ROUNDS rounds; ratio = median over rounds of scenario ÷ scenario 1, or 5 ÷ 3, of the same round)"
r2=$(ratio 2) r5=$(ratio 5)
{
	printf '%-40s %9s %9s %9s %7s  %s\n' scenario req/s p50 p99 ratio "target"
	row 2 1 "1 respond alone, with the cookie header"
	row 2 2 "2 magic_link, session cookie" "2/1 >= 0.95: $(verdict "$r2" 0.95)"
	row 3 1 "1 respond alone, with link URLs"
	row 3 3 "3 magic_link, redeem a link (303)" "none over HTTP; Go: redeem <= 1.15 x raw ed25519.Verify"
	row 4 1 "1 respond alone, with junk URLs"
	row 4 4 "4 magic_link, junk token (401)" "none over HTTP; should be far above 3/1"
	row 5 3 "3 again, the baseline of 5"
	row 5 5 "5 one-time link, Redis store (303)" "5/3 >= 0.7: $(verdict "$r5" 0.7)"
} | tee "$WORK/http-table.txt"

step "revocation propagation, instance A to instance B through Redis ($REVOCATIONS revocations)"
# prop_table prints the propagation figures of the PROPAGATION line against the 1 s target.
# shellcheck disable=SC2154 # n, p50_ms, … come from the PROPAGATION line (local)
prop_table() {
	# shellcheck disable=SC2086 # the line is key=value words
	local ${prop#PROPAGATION }
	awk -v n="$n" -v want="$REVOCATIONS" -v a="$p50_ms" -v b="$p99_ms" -v m="$max_ms" -v t="$timeouts" 'BEGIN {
		ok = t == 0 && n == want && m != "NaN" && m <= 1000
		printf "%-44s %12s  %s\n", "figure", "value", "target"
		printf "%-44s %12s\n", "revocations timed (not arrived within 5s)", sprintf("%d (%d)", n, t)
		printf "%-44s %10.1fms\n", "delay p50", a
		printf "%-44s %10.1fms\n", "delay p99", b
		printf "%-44s %10.1fms  every revocation <= 1000ms: %s\n", "delay max", m, (ok ? "PASS" : "FAIL")
	}'
}
prop_table | tee "$WORK/propagation-table.txt"

step "bulk signing: magiclink sign --csv, $ROWS rows"
# bulk N: signs an N-row CSV; sets bulk_rate (links/s) and bulk_rss (kB).
bulk() {
	local n=$1 start end lines
	gen_rows "$n" "$WORK/rows-$n.csv"
	start=$(date +%s%N)
	/usr/bin/time -v "$ML" sign --key "$WORK/key.private.jwk" --csv "$WORK/rows-$n.csv" --aud "$AUD" \
		>"$WORK/out-$n.csv" 2>"$WORK/bulk-$n-time.txt" || {
		tail -n 30 "$WORK/bulk-$n-time.txt" >&2
		die "magiclink sign --csv failed on $n rows"
	}
	end=$(date +%s%N)
	lines=$(wc -l <"$WORK/out-$n.csv")
	((lines == n + 1)) || die "sign --csv wrote $lines lines for $n rows, want $((n + 1))"
	bulk_rate=$(awk -v n="$n" -v ns=$((end - start)) 'BEGIN { printf "%.0f", n / ns * 1e9 }')
	bulk_rss=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$WORK/bulk-$n-time.txt")
	rm -f "$WORK/rows-$n.csv" "$WORK/out-$n.csv"
	printf '  %8d rows: %8d links/s, peak RSS %d kB, %d output lines\n' "$n" "$bulk_rate" "$bulk_rss" "$lines"
}
small=$((ROWS / 10 > 0 ? ROWS / 10 : 1))
bulk "$small"
small_rss=$bulk_rss
# The raw signing rate right before and right after the big run, so that both sides of the ratio
# see the same moment of the machine: its mean.
raw_before=$(raw_sign_rate)
bulk "$ROWS"
raw_after=$(raw_sign_rate)
[[ -n $raw_before && -n $raw_after ]] || die "no signs/s in the raw signing benchmark"
raw_rate=$(awk -v a="$raw_before" -v b="$raw_after" 'BEGIN { printf "%.0f", (a + b) / 2 }')
bulk_ratio=$(awk -v a="$bulk_rate" -v b="$raw_rate" 'BEGIN { printf "%.3f", a / b }')
{
	printf '%-44s %12s  %s\n' figure value "target"
	printf '%-44s %12d  %s\n' "sign --csv, $ROWS rows (links/s)" "$bulk_rate" ">= 80000 on the 2-core reference machine"
	printf '%-44s %12.0f\n' "raw ed25519.Sign, all cores (signs/s)" "$raw_rate"
	printf '%-44s %12s  %s\n' "bulk / raw" "$bulk_ratio" ">= 0.75: $(verdict "$bulk_ratio" 0.75)"
	printf '%-44s %12.3f  %s\n' "API create, Redis store / raw ($api_redis/s)" "$api_redis_ratio" ">= 0.1: $(verdict "$api_redis_ratio" 0.1)"
	printf '%-44s %12.3f  %s\n' "API create, file store / raw ($api_file/s)" "$api_file_ratio" "(informational)"
	printf '%-44s %12s  %s\n' "peak RSS, $small rows / $ROWS rows (kB)" "$small_rss / $bulk_rss" "flat (streamed)"
} | tee "$WORK/bulk-table.txt"

step "Go benchmarks matching '$GOBENCH' (-benchtime $BENCHTIME -count $BENCH_COUNT)"
go test -list '^Benchmark' ./... >"$WORK/bench-list.txt" || die "go test -list failed; output: $WORK/bench-list.txt"
awk '/^Benchmark/ { names = names (names ? "|" : "") $1; next }
	/^ok / { if (names) print $2, names; names = "" }' "$WORK/bench-list.txt" >"$WORK/bench-pkgs.txt"
: >"$WORK/gobench.txt"
while read -r pkg names; do
	sel=$(tr '|' '\n' <<<"$names" | grep -E -- "$GOBENCH" | grep -vx -e BenchmarkBulkSign -e BenchmarkRawEd25519SignParallel | paste -sd '|' || true)
	[[ -n $sel ]] || continue
	echo "go test -run '^\$' -bench '^($sel)\$' -benchtime $BENCHTIME -count $BENCH_COUNT -benchmem $pkg"
	go test -run '^$' -bench "^($sel)\$" -benchtime "$BENCHTIME" -count "$BENCH_COUNT" -benchmem "$pkg" |
		tee -a "$WORK/gobench.txt" || die "go test -bench failed in $pkg; output: $WORK/gobench.txt"
done <"$WORK/bench-pkgs.txt"
grep -q '^Benchmark' "$WORK/gobench.txt" || die "no Go benchmark matches '$GOBENCH'"

# gb NAME UNIT prints the median of a Go benchmark's figure in UNIT (ns/op, allocs/op) over its
# -count runs, or nothing when it did not run.
gb() {
	awk -v n="$1" -v u="$2" '{ name = $1; sub(/-[0-9]+$/, "", name) }
		name == n { for (i = 2; i < NF; i++) if ($(i + 1) == u) print $i }' "$WORK/gobench.txt" | median || true
}
# cmp LABEL NAME BASE MAX prints NAME's ns/op as a multiple of BASE's, against the target MAX.
cmp() {
	local a b
	a=$(gb "$2" ns/op) b=$(gb "$3" ns/op)
	if [[ -z $a || -z $b ]]; then
		printf '%-44s %16s\n' "$1" "not run"
		return
	fi
	awk -v l="$1" -v a="$a" -v b="$b" -v m="$4" 'BEGIN {
		printf "%-44s %15.3fx  <= %s x raw ed25519.Verify: %s\n", l, a / b, m, (a / b <= m ? "PASS" : "FAIL")
	}'
}
# nsop PKG PATTERN NAME runs the Go benchmarks of PKG matching PATTERN once and prints NAME's ns/op.
nsop() {
	local out
	out=$(go test -run '^$' -bench "$2" -benchtime "$BENCHTIME" -count 1 "$1") || die "go test -bench failed in $1: $out"
	awk -v n="$3" '{ name = $1; sub(/-[0-9]+$/, "", name) } name == n { print $3 }' <<<"$out"
}
# paired LABEL PKG BENCH_PATTERN BENCH BASE_PATTERN BASE MAX measures the benchmarks BENCH and BASE
# back to back (in alternating order) PAIRS times, so that both see the same moment of the machine,
# and prints the median of the ratios of their ns/op against the target MAX.
paired() {
	local i a b
	for ((i = 0; i < PAIRS; i++)); do
		if ((i % 2)); then
			b=$(nsop "$2" "$5" "$6") a=$(nsop "$2" "$3" "$4")
		else
			a=$(nsop "$2" "$3" "$4") b=$(nsop "$2" "$5" "$6")
		fi
		[[ -n $a && -n $b ]] || die "benchmark $4 or $6 did not run in $2"
		awk -v a="$a" -v b="$b" 'BEGIN { print a / b }'
	done | median | awk -v l="$1" -v m="$7" '{
		printf "%-44s %15.3fx  <= %s x raw ed25519.Verify: %s\n", l, $1, m, ($1 <= m ? "PASS" : "FAIL")
	}'
}
step "Go benchmarks against the README targets (medians; the first two rows over $PAIRS back-to-back pairs)"
{
	printf '%-44s %16s  %s\n' figure value "target"
	paired "token Verify/EdDSA / raw ed25519.Verify" ./token '^BenchmarkVerify$/^EdDSA$' BenchmarkVerify/EdDSA \
		'^BenchmarkRawEd25519Verify$' BenchmarkRawEd25519Verify 1.15
	paired "ServeHTTPRedeem / raw ed25519.Verify" ./caddymodule '^BenchmarkServeHTTPRedeem$' BenchmarkServeHTTPRedeem \
		'^BenchmarkServeHTTPRedeemBaseline$' BenchmarkServeHTTPRedeemBaseline 1.15
	worst=$(awk '{ name = $1; sub(/-[0-9]+$/, "", name) } name ~ /^BenchmarkReject\// { print name }' "$WORK/gobench.txt" |
		sort -u | while read -r n; do printf '%s %s\n' "$(gb "$n" ns/op)" "$n"; done | sort -g | tail -n 1 | cut -d' ' -f2)
	if [[ -n $worst ]]; then
		cmp "slowest Reject (${worst#BenchmarkReject/}) / RawEd25519Verify" "$worst" BenchmarkRawEd25519Verify 0.1
	fi
	for n in BenchmarkSessionOpen BenchmarkServeHTTPCookie BenchmarkServeHTTPCookieRevocations BenchmarkVerify/HS256 BenchmarkVerify/EdDSA; do
		ns=$(gb "$n" ns/op) allocs=$(gb "$n" allocs/op)
		if [[ -z $ns ]]; then
			printf '%-44s %16s\n' "${n#Benchmark}" "not run"
			continue
		fi
		awk -v n="$n" -v ns="$ns" -v a="${allocs:-0}" 'BEGIN {
			if (n == "BenchmarkSessionOpen") t = sprintf("cookie check <= 2000ns, <= 5 allocs: %s", (ns <= 2000 && a <= 5 ? "PASS" : "FAIL"))
			else if (n == "BenchmarkVerify/HS256") t = sprintf("HS256 verification <= 4000ns: %s", (ns <= 4000 ? "PASS" : "FAIL"))
			else if (n == "BenchmarkServeHTTPCookieRevocations") t = "the handler with a cookie, 100,000 links and 10,000 users revoked (informational)"
			else if (n == "BenchmarkVerify/EdDSA") t = "allocations per EdDSA verification (informational)"
			else t = "the whole handler with a cookie (informational)"
			printf "%-44s %16s  %s\n", substr(n, 10), sprintf("%.0fns %d allocs", ns, a), t
		}'
	done
} | tee "$WORK/go-table.txt"

step "done"
echo "Go benchmark output (benchstat format): $WORK/gobench.txt"
echo "tables and wrk output: $WORK"
