#!/usr/bin/env bash
# Installs what Slim's build, tests and benchmarks need on Debian 12.
# Idempotent and quiet: packages already present are not touched, and apt
# runs only when something is missing.
set -euo pipefail

packages=(
  # build (musl-tools: the C semantics suite built with musl, supervised path)
  gcc libc6-dev make clang llvm libbpf-dev musl-tools
  # lab
  iproute2 iputils-ping procps psmisc
  # secure-mode tests: conntrack in a lab host (SO_ORIGINAL_DST)
  nftables
  # benchmarks and application tests
  iperf3 netperf sockperf nginx-light wrk memcached libmemcached-tools
  redis-server redis-tools postgresql curl python3
  # the Kafka stand-in of bench --fixed-load (java, javac)
  openjdk-17-jdk-headless
  # dashboard tests
  tmux
  # the supervised path's etcd cluster (Go programs)
  etcd-server etcd-client
)

nonfree=/etc/apt/sources.list.d/slim-non-free.sources

# netperf lives in Debian's non-free section. Reuse the URIs and Suites of the
# machine's own debian.sources rather than naming a mirror here.
add_non_free() {
  local main=/etc/apt/sources.list.d/debian.sources
  [ -f "$nonfree" ] && return 0
  [ -f "$main" ] || { echo "install-deps: $main not found; add non-free for netperf by hand" >&2; return 1; }
  awk '
    /^URIs:/ && !uris { uris = $0 }
    /^Suites:/ && !suites { suites = $0 }
    /^Signed-By:/ && !signed { signed = $0 }
    END {
      if (!uris || !suites) exit 1
      print "Types: deb"; print uris; print suites; print "Components: non-free"
      if (signed) print signed
    }' "$main" >"$nonfree.tmp"
  mv "$nonfree.tmp" "$nonfree"
  need_update=1
}

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

need_update=0
add_non_free
stamp=/var/lib/apt/periodic/slim-update-stamp
if [ "$need_update" = 1 ] || [ ! -f "$stamp" ] || [ -n "$(find "$stamp" -mmin +360)" ]; then
  apt-get update -qq >/dev/null
  mkdir -p "$(dirname "$stamp")" && touch "$stamp"
fi
echo "install-deps: installing ${missing[*]}"
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian starts these daemons on install; tests start their own copies.
for svc in nginx memcached; do
  if command -v service >/dev/null; then service "$svc" stop >/dev/null 2>&1 || true; fi
done
