package bench

import (
	"context"
	"strconv"
)

// Clients of the connection-per-request tests.
const (
	// nginxCloseConns is wrk's connections, each closed by nginx after
	// one response (wrk reconnects).
	nginxCloseConns = 16
	// pgbenchConnectClients is pgbench's clients, each opening a new
	// connection (a new server process) per transaction.
	pgbenchConnectClients = 8
)

// measureNginxClose is nginx under wrk with "Connection: close": a new
// TCP connection for every request, as HTTP/1.0 clients and health checks
// make.
func measureNginxClose(ctx context.Context, s *sample) (map[string]float64, error) {
	return nginxUnderWrk(ctx, s, metricNginxClose.ID, "-c"+strconv.Itoa(nginxCloseConns), "-H", "Connection: close")
}

// measurePgbenchConnect is PostgreSQL under pgbench -C: select-only
// transactions, each on a new connection (PostgreSQL forks a backend for
// each), the database prepared once per bench (preparePostgres).
func measurePgbenchConnect(ctx context.Context, s *sample) (map[string]float64, error) {
	server := postgresServer(s)
	var rate float64
	err := s.withServer(ctx, server, printed(postgresReady), func() error {
		out, err := s.runClient(ctx, pgTool("pgbench"), "-h", s.addr(), "-p", strconv.Itoa(postgresPort), "-U", "postgres",
			"-n", "-S", "-C", "-c", strconv.Itoa(pgbenchConnectClients), "-j", "1", "-T", seconds(s.duration), "postgres")
		if err != nil {
			return err
		}
		rate, err = parsePgbenchTPS(out)
		return err
	})
	if err != nil {
		return nil, err
	}
	return map[string]float64{metricPgbenchConnect.ID: rate}, nil
}
