#!/usr/bin/env bash
# bench/load.sh puts magiclink under load and faults: it builds cmd/caddy and bench/load, raises
# the open-file limit for 10,000 connections, and runs the scenarios of bench/load (connections,
# storm, redis, upstream, reload), each of which stops by itself. Arguments are passed to
# bench/load, e.g. bash bench/load.sh -scenarios redis -once-links 2000. See bench/README.md.
set -eEuo pipefail

PROG=load
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$(dirname "${BASH_SOURCE[0]}")/.."

WORK=$(mktemp -d "${TMPDIR:-/tmp}/magiclink-load.XXXXXX")
cleanup() {
	local rc=$?
	rm -f "$WORK/caddy" "$WORK/load"
	if ((rc != 0)); then
		echo "load: failed (exit $rc); logs are in $WORK" >&2
	fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

need redis-server redis-server

# One file per connection on each side, plus Caddy's and the upstream's own.
conns=10000
prev=
for arg in "$@"; do
	case $prev/$arg in
	-conns/* | --conns/*) conns=$arg ;;
	*/-conns=* | */--conns=*) conns=${arg#*=} ;;
	esac
	prev=$arg
done
[[ $conns =~ ^[0-9]+$ ]] || die "-conns must be a whole number, got '$conns'"
files=$((conns + 2048))
if (($(ulimit -n) < files)); then
	ulimit -n "$files" 2>/dev/null ||
		die "the open-file limit is $(ulimit -n) (hard $(ulimit -Hn)); $files are needed: raise it (ulimit -n $files as root), or pass a smaller -conns"
fi

step "building cmd/caddy and bench/load (work dir $WORK)"
go build -o "$WORK/caddy" ./cmd/caddy
go build -o "$WORK/load" ./bench/load
"$WORK/load" -caddy "$WORK/caddy" -redis-server "$(command -v redis-server)" -work "$WORK" "$@"
