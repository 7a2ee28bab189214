package bench

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
)

// Ports the servers listen on, each at the scenario's server address.
const (
	iperf3Port    = 5201
	netperfPort   = 12865
	nginxPort     = 8080
	memcachedPort = 11211
)

// userHZ is the unit of the times in /proc/stat (USER_HZ, 100 on Linux).
const userHZ = 100

func measureIperf3(ctx context.Context, s *sample) (map[string]float64, error) {
	port := strconv.Itoa(iperf3Port)
	// A probe connection upsets iperf3: it takes it for a client, fails and
	// may reset the real one. It says when it listens instead, once its
	// output is flushed at every line. No -B: by default it listens on ::
	// (one dual-stack AF_INET6 socket), as users run it.
	server := []string{"iperf3", "-s", "-1", "--forceflush", "-p", port}
	var values map[string]float64
	err := s.withServer(ctx, server, printed("Server listening on "+port), func() error {
		before, err := readCPUBusy()
		if err != nil {
			return err
		}
		out, err := s.runClient(ctx, "iperf3", "-c", s.addr(), "-p", port, "-t", seconds(s.duration), "-J")
		if err != nil {
			return err
		}
		after, err := readCPUBusy()
		if err != nil {
			return err
		}
		result, err := parseIperf3(out)
		if err != nil {
			return err
		}
		cpuSeconds := float64(after-before) / userHZ
		gigabytes := result.BytesReceived / 1e9
		values = map[string]float64{
			metricThroughput.ID: result.BitsPerSecond / 1e9,
			metricCPUPerGB.ID:   cpuSeconds / gigabytes,
		}
		return nil
	})
	return values, err
}

func measureTCPRR(ctx context.Context, s *sample) (map[string]float64, error) {
	values, err := runNetperf(ctx, s, "TCP_RR")
	if err != nil {
		return nil, err
	}
	return map[string]float64{metricRRRate.ID: values[0], metricRRLatency.ID: values[1]}, nil
}

func measureTCPCRR(ctx context.Context, s *sample) (map[string]float64, error) {
	// netperf binds each connection's port itself, sweeping 5000-65535
	// by default; secure mode lets a host socket bind only a port of the
	// ephemeral range, so outside it the connects would go over the
	// overlay. Every column gets the client's ephemeral range, the ports
	// the kernel would pick anyway.
	low, high, err := ephemeralPorts(s.Client)
	if err != nil {
		return nil, err
	}
	values, err := runNetperf(ctx, s, "TCP_CRR", "-p", fmt.Sprintf("%d,%d", low, high))
	if err != nil {
		return nil, err
	}
	return map[string]float64{metricCRRRate.ID: values[0]}, nil
}

// runNetperf runs a netperf test (with any test-specific options) against
// a fresh netserver and returns its throughput (transactions/s) and mean
// latency (µs).
func runNetperf(ctx context.Context, s *sample, kind string, testOptions ...string) ([]float64, error) {
	port := strconv.Itoa(netperfPort)
	// -D keeps netserver in the foreground, where it can be stopped. No
	// -L: by default it listens on :: (dual-stack), as users run it.
	server := []string{"netserver", "-D", "-p", port}
	var values []float64
	err := s.withServer(ctx, server, acceptsOn(netperfPort), func() error {
		argv := []string{"netperf", "-H", s.addr(), "-p", port, "-t", kind,
			"-l", seconds(s.duration), "-P", "0", "--", "-o", "THROUGHPUT,MEAN_LATENCY"}
		out, err := s.runClient(ctx, append(argv, testOptions...)...)
		if err != nil {
			return err
		}
		if values, err = parseNetperfValues(out, 2); err != nil {
			return err
		}
		if values[0] <= 0 {
			return fmt.Errorf("netperf %s completed no transactions", kind)
		}
		return nil
	})
	return values, err
}

func measureNginx(ctx context.Context, s *sample) (map[string]float64, error) {
	return nginxUnderWrk(ctx, s, metricNginx.ID, "-c32")
}

// nginxUnderWrk runs nginx and, once it accepts, wrk (one thread, the
// sample's duration, wrkArgs before the URL) against its page, and
// returns wrk's request rate as metric.
func nginxUnderWrk(ctx context.Context, s *sample, metric string, wrkArgs ...string) (map[string]float64, error) {
	server, err := setUpNginx(s)
	if err != nil {
		return nil, err
	}
	var rate float64
	err = s.withServer(ctx, server, acceptsOn(nginxPort), func() error {
		url := fmt.Sprintf("http://%s/%s", netip.AddrPortFrom(s.ServerAddr, nginxPort), nginxPage)
		args := append([]string{"wrk", "-t1", "-d", seconds(s.duration) + "s"}, wrkArgs...)
		out, err := s.runClient(ctx, append(args, url)...)
		if err != nil {
			return err
		}
		rate, err = parseWrk(out)
		return err
	})
	if err != nil {
		return nil, err
	}
	return map[string]float64{metric: rate}, nil
}

// setUpNginx writes nginx's configuration (with extra directives in its
// http block) and page into the sample's directory and returns nginx's
// command line.
func setUpNginx(s *sample, httpExtra ...string) ([]string, error) {
	// nginx's worker runs as nobody: it must be able to read the page.
	if err := os.Chmod(s.dir, 0o755); err != nil {
		return nil, fmt.Errorf("opening %s to nginx: %w", s.dir, err)
	}
	configPath := filepath.Join(s.dir, "nginx.conf")
	if err := os.WriteFile(configPath, []byte(nginxConfig(s.dir, nginxPort, httpExtra...)), 0o644); err != nil {
		return nil, fmt.Errorf("writing nginx configuration: %w", err)
	}
	if err := os.WriteFile(filepath.Join(s.dir, nginxPage), nginxPageContent(), 0o644); err != nil {
		return nil, fmt.Errorf("writing nginx page: %w", err)
	}
	// -e: log startup errors in the temporary directory too, not in the
	// system's nginx log.
	return []string{"nginx", "-p", s.dir, "-c", configPath, "-e", filepath.Join(s.dir, "error.log")}, nil
}

func measureMemcached(ctx context.Context, s *sample) (map[string]float64, error) {
	port := strconv.Itoa(memcachedPort)
	// -U 0: no UDP port. No -l: by default it listens on every address,
	// 0.0.0.0 and :: (IPV6_V6ONLY), as users run it.
	server := []string{"memcached", "-u", "nobody", "-p", port, "-t", "2", "-U", "0"}
	var rate float64
	err := s.withServer(ctx, server, acceptsOn(memcachedPort), func() error {
		// 16 connections on one thread; memcaslap's default mix is 90% gets.
		out, err := s.runClient(ctx, "memcaslap", "-s", s.addr()+":"+port,
			"-t", seconds(s.duration)+"s", "-c", "16", "-T", "1")
		if err != nil {
			return err
		}
		rate, err = parseMemcaslap(out)
		return err
	})
	if err != nil {
		return nil, err
	}
	return map[string]float64{metricMemcached.ID: rate}, nil
}
