package bench

import (
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Ports of the fixed-load servers not in measure_linux.go.
const (
	redisPort    = 6379
	postgresPort = 5432
	kafkaPort    = 9092
)

// Settings of the fixed-load clients.
const (
	// fixedConns is how many connections each client keeps, each with
	// one request outstanding at a time (pgbench: its clients).
	fixedConns   = 16
	pgbenchConns = 8
	// kafkaRecordBytes is the size of a Kafka record, header included.
	kafkaRecordBytes = 100
)

// fixedApps are the applications of the fixed-load mode, in the order
// they run. Why these clients: memcached, nginx and redis under
// slim-loadgen (embedded; Debian packages no load generator that holds a
// rate and reports percentiles: memaslap, wrk and redis-benchmark run
// closed loops, and wrk2 and memtier_benchmark are not packaged);
// PostgreSQL under pgbench (-S, select-only, so that the network, not the
// disk, is what the columns differ in), which holds a rate with --rate and
// logs every transaction with -l; Kafka as a stand-in (bench/kafka), since
// a real broker is not available here (see README).
var fixedApps = []fixedApp{
	{
		ID: "memcached", Title: "memcached", Op: "op", Tools: []string{"memcached"},
		Warmup: time.Second, Drain: 2 * time.Second,
		server: func(s *sample) ([]string, readiness, error) {
			return []string{"memcached", "-u", "nobody", "-p", strconv.Itoa(memcachedPort),
				"-t", "2", "-U", "0"}, acceptsOn(memcachedPort), nil
		},
		client: func(app fixedApp, s *sample, rate float64) []string {
			return loadgenArgs(app, s, "memcached", memcachedPort, rate)
		},
		marks:  loadgenMarks,
		result: loadgenResult,
	},
	{
		ID: "nginx", Title: "nginx", Op: "req", Tools: []string{"nginx"},
		Warmup: time.Second, Drain: 2 * time.Second,
		server: func(s *sample) ([]string, readiness, error) {
			// Connections live as long as the client's: no reconnects.
			argv, err := setUpNginx(s, "keepalive_requests 100000000;")
			return argv, acceptsOn(nginxPort), err
		},
		client: func(app fixedApp, s *sample, rate float64) []string {
			return append(loadgenArgs(app, s, "http", nginxPort, rate), "--path", "/"+nginxPage)
		},
		marks:  loadgenMarks,
		result: loadgenResult,
	},
	{
		ID: "redis", Title: "redis", Op: "op", Tools: []string{"redis-server"},
		Warmup: time.Second, Drain: 2 * time.Second,
		server: func(s *sample) ([]string, readiness, error) {
			// No --bind: its default, "* -::*" (0.0.0.0, and :: where IPv6 is on).
			return []string{"redis-server", "--port", strconv.Itoa(redisPort), "--save", "",
				"--appendonly", "no", "--protected-mode", "no", "--dir", s.dir}, printed("Ready to accept connections"), nil
		},
		client: func(app fixedApp, s *sample, rate float64) []string {
			return loadgenArgs(app, s, "redis", redisPort, rate)
		},
		marks:  loadgenMarks,
		result: loadgenResult,
	},
	{
		ID: "postgres", Title: "postgres", Op: "tx", Tools: []string{pgTool("postgres"), pgTool("initdb"), pgTool("pgbench"), "setpriv"},
		// pgbench marks the start with its first progress report (-P).
		Warmup:  time.Second,
		prepare: preparePostgres,
		server: func(s *sample) ([]string, readiness, error) {
			return postgresServer(s), printed(postgresReady), nil
		},
		client: pgbenchArgs,
		marks: clientMarks{
			start: func(stream, line string) bool { return stream == "stderr" && strings.HasPrefix(line, "progress: ") },
			end:   func(string, string) bool { return false },
		},
		result: pgbenchResult,
	},
	{
		ID: "kafka", Title: "kafka stand-in", Op: "msg", Tools: []string{"java", "javac"},
		// Longer: the JVMs compile their hot paths meanwhile.
		Warmup: 2 * time.Second, Drain: 2 * time.Second,
		prepare: prepareKafka,
		server: func(s *sample) ([]string, readiness, error) {
			argv := append(javaArgs(s), "broker", s.addr(), strconv.Itoa(kafkaPort), s.dir)
			return argv, printed("slim-kafka broker listening"), nil
		},
		client: func(app fixedApp, s *sample, rate float64) []string {
			return append(javaArgs(s), "client", s.addr(), strconv.Itoa(kafkaPort), formatRate(rate),
				seconds(app.Warmup), seconds(s.duration), strconv.Itoa(kafkaRecordBytes), seconds(app.Drain))
		},
		marks:  loadgenMarks,
		result: loadgenResult,
	},
}

func formatRate(rate float64) string { return strconv.FormatFloat(rate, 'f', -1, 64) }

// loadgenArgs is slim-loadgen's command line against the sample's server.
func loadgenArgs(app fixedApp, s *sample, proto string, port int, rate float64) []string {
	argv := []string{s.fixed.loadgen, "--proto", proto, "--host", s.addr(), "--port", strconv.Itoa(port),
		"--conns", strconv.Itoa(fixedConns), "--warmup", seconds(app.Warmup), "--duration", seconds(s.duration),
		"--drain", seconds(app.Drain)}
	if rate > 0 {
		argv = append(argv, "--rate", formatRate(rate))
	}
	return argv
}

func loadgenResult(_ *sample, stdout []byte, _, _ time.Time) (loadResult, error) {
	return parseLoadResult(stdout)
}

// pgbenchArgs is pgbench's command line: select-only transactions on
// pgbenchConns connections from one thread, a progress report after the
// warm-up (the start mark), every transaction logged in the sample's
// directory.
func pgbenchArgs(app fixedApp, s *sample, rate float64) []string {
	warmup := app.Warmup
	argv := []string{pgTool("pgbench"), "-h", s.addr(), "-p", strconv.Itoa(postgresPort), "-U", "postgres",
		"-n", "-S", "-c", strconv.Itoa(pgbenchConns), "-j", "1",
		"-T", seconds(warmup + s.duration), "-P", seconds(warmup),
		"-l", "--log-prefix", filepath.Join(s.dir, pgbenchLogPrefix)}
	if rate > 0 {
		argv = append(argv, "--rate", formatRate(rate))
	}
	return append(argv, "postgres")
}

const pgbenchLogPrefix = "pgbench_log"

// postgresServer is PostgreSQL's command line, serving the bench's
// database (preparePostgres). Its default, listen_addresses 'localhost',
// serves no other host: users set '*' (0.0.0.0, and :: IPV6_V6ONLY), as
// here.
func postgresServer(s *sample) []string {
	return asPostgres(s.tools[pgTool("postgres")], "-D", s.fixed.pgData, "-h", "*", "-p", strconv.Itoa(postgresPort),
		"-c", "unix_socket_directories=", "-c", "fsync=off", "-c", "max_connections=50")
}

// postgresReady is what PostgreSQL prints once it accepts connections.
const postgresReady = "database system is ready to accept connections"

// pgTool names a PostgreSQL program for lookTool: Debian keeps them in
// /usr/lib/postgresql/VERSION/bin, with only wrapper scripts on PATH.
func pgTool(name string) string { return pgToolPrefix + name }

const pgToolPrefix = "pg:"

// asPostgres runs a command as the postgres user (PostgreSQL refuses root).
func asPostgres(argv ...string) []string {
	return append([]string{"setpriv", "--reuid=postgres", "--regid=postgres", "--clear-groups", "--"}, argv...)
}

// javaArgs starts the Kafka stand-in: a small heap, one GC thread, IPv4
// sockets (where IPv6 is on Java makes dual-stack IPv6 sockets, which the
// shim accelerates too; the lab's namespaces have it off, so the flag
// changes nothing there) and no performance-data file in /tmp.
func javaArgs(s *sample) []string {
	return []string{"java", "-XX:+UseSerialGC", "-Xms64m", "-Xmx256m", "-XX:-UsePerfData",
		"-Djava.net.preferIPv4Stack=true", "-cp", s.fixed.kafkaClasses, "SlimKafka"}
}
