#!/usr/bin/env bash
# Installs what Slim's build, tests and benchmarks need on Debian 12.
# Idempotent and quiet: packages already present are not touched, and apt
# runs only when something is missing.
set -euo pipefail

packages=(
  # build (musl-tools: the C semantics suite built with musl, supervised path)
  gcc libc6-dev make clang llvm libbpf-dev musl-tools
  # io_uring test programs (testdata/c)
  liburing-dev
  # lab
  iproute2 iputils-ping procps psmisc
  # secure-mode tests: conntrack in a lab host (SO_ORIGINAL_DST)
  nftables
  # cluster store: etcd members of labs and tests (/usr/bin/etcd), etcdctl
  etcd-server etcd-client
  # benchmarks and application tests
  iperf3 netperf sockperf nginx-light wrk memcached libmemcached-tools
  redis-server redis-tools postgresql curl python3
  # more servers users run, with their defaults (application tests)
  haproxy socat nodejs mariadb-server mariadb-client openssh-server
  openssh-client
  # Go services users run, under slim exec's supervisor (e2e: supervised services)
  prometheus prometheus-node-exporter caddy
  # servers users run that Slim was not written for (e2e: unseen programs)
  vsftpd rabbitmq-server python3-pika docker-registry
  # a Go service under slim exec: a NATS cluster (e2e TestIntegrationSupervisedNATS)
  nats-server
  # static busybox's applets under slim exec (e2e TestIntegrationSupervisedBusybox);
  # replaces the dynamic busybox package (they conflict; what wants busybox takes either)
  busybox-static
  # pre-fork workers sharing a listener: gunicorn (e2e TestIntegrationPassedConnections)
  python3-gunicorn
  # mail servers under slim exec (e2e TestIntegrationMailServers); postfix replaces any exim4
  postfix dovecot-imapd swaks
  # the Kafka stand-in of bench --fixed-load (java, javac)
  openjdk-17-jdk-headless
  # dashboard tests
  tmux
  # real runtimes (e2e: podman with CNI, containerd, Docker) and image
  # tarballs; with --no-install-recommends podman gets no netavark
  podman runc containerd docker.io containernetworking-plugins umoci
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
# A Debian 11 userland (glibc 2.31) for the old-glibc tests.
bash "$(dirname "$0")/fetch-old-glibc.sh"
[ ${#missing[@]} -eq 0 ] && exit 0

need_update=0
add_non_free
stamp=/var/lib/apt/periodic/slim-update-stamp
if [ "$need_update" = 1 ] || [ ! -f "$stamp" ] || [ -n "$(find "$stamp" -mmin +360)" ]; then
  apt-get update -qq >/dev/null
  mkdir -p "$(dirname "$stamp")" && touch "$stamp"
fi
echo "install-deps: installing ${missing[*]}"
# No daemon may start on install (docker.io would put docker0 and its
# 172.17.0.0/16 on the machine's own namespace): a policy-rc.d that says
# no, unless the machine has one.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy"
  trap 'rm -f "$policy"' EXIT
fi
# Postfix unconfigured: no /etc/postfix/main.cf that a later start of the
# machine's own postfix would listen with on every interface (tests run
# theirs with a config directory of their own, postfix -c).
echo 'postfix postfix/main_mailer_type select No configuration' | debconf-set-selections
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian starts these daemons on install; tests start their own copies
# (etcd's would listen on the machine's own loopback: labs and tests run
# theirs in their own namespaces).
for svc in nginx memcached etcd haproxy mariadb ssh prometheus prometheus-node-exporter caddy vsftpd docker-registry nats-server postfix dovecot; do
  if command -v service >/dev/null; then service "$svc" stop >/dev/null 2>&1 || true; fi
done
# RabbitMQ's init script runs rabbitmqctl even to stop, and rabbitmqctl
# starts Erlang's port mapper (epmd, on the machine's own 0.0.0.0:4369) when
# none runs: stop the broker, then its epmd, only if the broker runs.
if pgrep -u rabbitmq -x beam.smp >/dev/null; then
  service rabbitmq-server stop >/dev/null 2>&1 || true
  epmd -kill >/dev/null 2>&1 || true
fi
