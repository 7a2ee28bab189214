// Package bench measures host networking, Slim's VXLAN overlay and Slim
// side by side on a lab (see package lab) of two hosts.
//
// Each scenario is a column: "host" runs the client in host namespace h2
// and the server in h1 on its wire address; "overlay" runs them in the
// containers h2-c1 and h1-c1 on the overlay; "slim" runs them there under
// `slim exec` with the lab's routers; with --secure, "secure" runs them in
// a second container per host (h2-c2, h1-c2) served by routers in secure
// mode. With Options.Routed, the anchor columns "routed" and "netkit" run
// them in containers whose subnets are routed between the hosts over the
// wire, without a tunnel (lab.EnsureRouted; netkit only where the kernel
// has it), and the report compares slim and secure with them too. Each
// test is one or more rows (iperf3 throughput and CPU cost, netperf TCP_RR
// and TCP_CRR, nginx under wrk, memcached under memcaslap, and a new
// connection per request: nginx under wrk with "Connection: close",
// PostgreSQL under pgbench -C). A test runs for a fixed duration, with
// the scenarios alternated within each run, and the report keeps every
// sample and the median of the runs, plus each scenario's ratio to the
// first one with the range of the per-run ratios.
//
// The fixed-load mode (Options.FixedLoad, fixedload.go) runs applications
// instead (memcached, nginx, redis, PostgreSQL, a Kafka stand-in): each at
// its peak, then at one offered load in every column, reporting latency
// percentiles and the CPU time per operation of the client's and the
// server's processes, each run in a cgroup v2 of its own, and a comparison
// with the paper's figures (paper.go). Its load generator, slim-loadgen,
// is C (bench/loadgen), embedded in slim; the Kafka stand-in is Java
// (bench/kafka), compiled when the bench runs.
//
// The supervised mode (Options.Supervised, supervised.go) measures the
// path of programs the shim cannot preload: a Go client and server
// (bench/peer) and a C twin of them (bench/peerc), built when the bench
// runs, in columns host, overlay, preloaded (the C twin under the shim),
// supervised (the Go peer under slim exec's seccomp supervisor) and
// supervised-c (the C twin built static, supervised), with the setup cost
// of the supervised path over the preloaded one per connection.
//
// Every server is started fresh for each sample, with the binds a user
// leaves default (iperf3 -s and netserver on ::, dual-stack; memcached and
// redis on every address; nginx as Debian's default site; PostgreSQL on
// '*', since its default serves only localhost), waited for until it
// accepts connections, and killed and reaped afterwards. Traffic only ever
// goes to lab addresses, inside lab namespaces.
package bench
