#!/usr/bin/env bash
# Runs every program's selftest (server and client in one process tree) on
# one address, 127.0.0.1 by default, and prints a summary. Exit 0 only if all
# pass. Usage: run-plain.sh [ADDR]   (builds bin/ first)
# Under the shim: run-plain.sh with LD_PRELOAD set in the environment, or
# SLIMTEST_WRAP="cmd args" to prefix every program (e.g. "slim exec ...").
set -u
here=$(cd "$(dirname "$0")" && pwd)
addr=${1:-127.0.0.1}
make -s -C "$here" >/dev/null || { echo "build failed" >&2; exit 2; }
progs="connect_block connect_nonblock epoll pollselect accept sockopts names dupclose threads forkexec passconn pyecho.py"
wrap=${SLIMTEST_WRAP:-}
logdir=$(mktemp -d /tmp/slimtest-plain.XXXXXX)
pass=0 fail=0 failed=""
for p in $progs; do
	log="$logdir/$p.log"
	# timeout: a backstop; each program bounds itself with alarm().
	timeout -k 5 90 $wrap "$here/bin/$p" selftest "$addr" >"$log" 2>&1
	rc=$?
	nok=$(grep -c '^ok ' "$log")
	nfail=$(grep -c '^FAIL ' "$log")
	if [ "$rc" -eq 0 ] && [ "$nfail" -eq 0 ]; then
		pass=$((pass + 1))
		printf 'PASS %-18s %4d ok\n' "$p" "$nok"
	else
		fail=$((fail + 1))
		failed="$failed $p"
		printf 'FAIL %-18s %4d ok %3d FAIL (exit %d) log %s\n' "$p" "$nok" "$nfail" "$rc" "$log"
		grep -E '^(FAIL|skip) ' "$log" | sed 's/^/     /' | head -20
	fi
done
echo "summary: $pass passed, $fail failed${failed:+ (}${failed# }${failed:+)} on $addr; logs in $logdir"
[ "$fail" -eq 0 ]
