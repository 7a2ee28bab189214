#!/usr/bin/env bash
# Runs every program as a server in one network namespace and as a client in
# another, e.g. across the lab's overlay:
#   run-pair.sh semt-h2-c1 198.19.2.2 semt-h1-c1 [PORTBASE]
# A namespace of "-" means the current one. Program i serves on PORTBASE+2i
# (default base 7400: below the lab's ephemeral range, 10000-65000) and holds
# PORTBASE+2i+1 bound but not listening (the refused port). A program passes
# if its client exits 0 and its server printed no FAIL line. Prints each
# program's first client and server "addr" lines so the addresses can be
# checked. Needs root for ip netns exec.
# SLIMTEST_WRAP="cmd args" prefixes both sides (e.g. to run them accelerated),
# or SLIMTEST_WRAP_SERVER / SLIMTEST_WRAP_CLIENT for one side only.
set -u
if [ $# -lt 3 ]; then
	echo "usage: $0 SERVER_NETNS SERVER_ADDR CLIENT_NETNS [PORTBASE]" >&2
	exit 2
fi
sns=$1 saddr=$2 cns=$3 base=${4:-7400}
here=$(cd "$(dirname "$0")" && pwd)
make -s -C "$here" >/dev/null || { echo "build failed" >&2; exit 2; }
progs="connect_block connect_nonblock epoll pollselect accept sockopts names dupclose threads forkexec passconn pyecho.py"
wrap_s=${SLIMTEST_WRAP_SERVER:-${SLIMTEST_WRAP:-}}
wrap_c=${SLIMTEST_WRAP_CLIENT:-${SLIMTEST_WRAP:-}}
# ns_cmd NS: the prefix that runs a command in NS (ip netns exec execs it,
# so a background job's $! is the program itself and can be killed).
ns_cmd() { if [ "$1" = "-" ]; then echo ""; else echo "ip netns exec $1"; fi; }
sx=$(ns_cmd "$sns") cx=$(ns_cmd "$cns")
logdir=$(mktemp -d /tmp/slimtest-pair.XXXXXX)
pass=0 fail=0 failed="" i=0 spid=""
cleanup() { [ -n "$spid" ] && kill "$spid" 2>/dev/null && wait "$spid" 2>/dev/null; }
trap cleanup EXIT INT TERM
for p in $progs; do
	port=$((base + 2 * i))
	i=$((i + 1))
	slog="$logdir/$p.server.log" clog="$logdir/$p.client.log"
	$sx $wrap_s "$here/bin/$p" server "$saddr" "$port" >"$slog" 2>&1 &
	spid=$!
	for _ in $(seq 1 100); do # up to 5 s for the listener
		grep -qs 'listening on' "$slog" && break
		kill -0 "$spid" 2>/dev/null || break
		sleep 0.05
	done
	$cx timeout -k 5 90 $wrap_c "$here/bin/$p" client "$saddr" "$port" >"$clog" 2>&1
	rc=$?
	sleep 0.2 # let the server print its last lines
	kill "$spid" 2>/dev/null
	wait "$spid" 2>/dev/null
	spid=""
	nok=$(grep -c '^ok ' "$clog")
	nfail=$(( $(grep -c '^FAIL ' "$clog") + $(grep -c '^FAIL ' "$slog") ))
	if [ "$rc" -eq 0 ] && [ "$nfail" -eq 0 ]; then
		pass=$((pass + 1))
		printf 'PASS %-18s %4d ok (client)\n' "$p" "$nok"
	else
		fail=$((fail + 1))
		failed="$failed $p"
		printf 'FAIL %-18s %4d ok %3d FAIL (client exit %d) logs %s\n' "$p" "$nok" "$nfail" "$rc" "$logdir/$p.*"
		grep -hE '^(FAIL|skip) ' "$clog" "$slog" | sed 's/^/     /' | head -20
	fi
	grep -m1 '^addr .*side=client' "$clog" | sed 's/^/     /'
	grep -m1 '^addr .*side=server' "$slog" | sed 's/^/     /'
done
echo "summary: $pass passed, $fail failed${failed:+ (}${failed# }${failed:+)}; server $saddr in $sns, client in $cns; logs in $logdir"
[ "$fail" -eq 0 ]
