package e2e

import (
	"fmt"
	"net/netip"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// rabbitConfig is what a user writes so that clients on other hosts may
// log in as guest (the official Docker image ships the same line):
// RabbitMQ lets guest in over loopback only.
const rabbitConfig = "loopback_users.guest = false\n"

// amqpMessages is how many 1 KiB messages go through the broker.
const amqpMessages = 2000

// maxRabbitStart bounds RabbitMQ's start (some 5 s here).
const maxRabbitStart = 40 * time.Second

// Erlang's ports: the port mapper (epmd) and the node's distribution port.
const (
	epmdPort = 4369
	distPort = 25672
	amqpPort = 5672
)

// rabbitDir makes a directory the broker (it runs as user rabbitmq) keeps
// its database and logs in, with its config and an Erlang hosts file that
// names the machine's host name after the broker's overlay address (what
// DNS does between containers; the lab's containers share /etc/hosts).
func rabbitDir(t *testing.T, hostname, brokerAddr string) string {
	rabbit, err := user.Lookup("rabbitmq")
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(rabbit.Uid)
	gid, _ := strconv.Atoi(rabbit.Gid)
	dir, err := os.MkdirTemp("", "slim-rabbit")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	octets := strings.ReplaceAll(brokerAddr, ".", ",")
	files := map[string]string{
		"rabbitmq.conf": rabbitConfig,
		"inetrc":        fmt.Sprintf("{host, {%s}, [%q]}.\n{lookup, [file, native]}.\n", octets, hostname),
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chown(dir, uid, gid); err != nil {
		t.Fatal(err)
	}
	return dir
}

// runRabbitMQ: rabbitmq-server in h1-c1 under slim exec (as root: Debian's
// wrapper runs it as rabbitmq through su), a consumer in h1-c2 and a
// publisher in h2-c1, both pika under slim exec; then epmd and the
// distribution port from h2-c1 (a NAMES request, rabbitmqctl -n).
func runRabbitMQ(t *testing.T, l *testLab) {
	hostname, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	addr := l.containerAddr("h1-c1")
	dir := rabbitDir(t, hostname, addr)
	started := time.Now()
	broker := l.start("h1-c1", true, "env", "RABBITMQ_MNESIA_BASE="+filepath.Join(dir, "mnesia"),
		"RABBITMQ_LOG_BASE="+filepath.Join(dir, "log"), "RABBITMQ_CONFIG_FILE="+filepath.Join(dir, "rabbitmq.conf"),
		"rabbitmq-server")
	broker.waitFor("Starting broker... completed", maxRabbitStart)
	t.Logf("RabbitMQ started in %v", time.Since(started).Round(time.Millisecond))
	for _, port := range []int{amqpPort, distPort, epmdPort} {
		l.waitForDirectory("h2", addr, port, 10*time.Second)
	}
	listeners := map[int]netip.AddrPort{}
	for _, port := range []int{amqpPort, distPort, epmdPort} {
		listeners[port] = l.hostListenerOf("h1", addr, port)
	}
	exchangeMessages(t, l, addr)
	brokerLog, _ := os.ReadFile(filepath.Join(dir, "log", "rabbit@"+hostname+".log"))
	if want := "accepting AMQP connection"; !strings.Contains(string(brokerLog), want) ||
		!strings.Contains(string(brokerLog), "("+l.containerAddr("h2-c1")+":") {
		t.Errorf("RabbitMQ's log names no connection from the publisher's overlay address:\n%s", tail(string(brokerLog), 10))
	}
	reachErlangPorts(t, l, dir, hostname, addr)
	stopRabbitMQ(t, l, broker, addr, listeners)
	checkSupervised(t, broker)
	if strings.Contains(string(brokerLog), "198.18.") {
		t.Errorf("a host address reached RabbitMQ's log:\n%s", tail(string(brokerLog), 10))
	}
}

// exchangeMessages: the consumer waits in h1-c2, the publisher sends from
// h2-c1; every message arrives and nothing crosses VXLAN.
func exchangeMessages(t *testing.T, l *testLab, addr string) {
	count := strconv.Itoa(amqpMessages)
	before := l.vxlanBytes("h1")
	consumer := l.start("h1-c2", true, "/usr/bin/python3", testdataPath("amqpclient.py"), "consume", addr, count)
	consumer.waitFor("consuming", 15*time.Second)
	publisher := l.start("h2-c1", true, "/usr/bin/python3", testdataPath("amqpclient.py"), "publish", addr, count)
	err := publisher.wait(30 * time.Second)
	wantOutput(t, "publisher", publisher.output(), err, "published "+count)
	err = consumer.wait(30 * time.Second)
	wantOutput(t, "consumer", consumer.output(), err, "received "+count)
	crossed := l.vxlanBytes("h1") - before
	t.Logf("%d messages of 1 KiB: %d bytes over VXLAN", amqpMessages, crossed)
	if crossed > maxStrayOverlayBytes {
		t.Errorf("%d bytes crossed VXLAN while %d messages went through the broker", crossed, amqpMessages)
	}
	checkSupervised(t, publisher)
	checkSupervised(t, consumer)
}

// reachErlangPorts: from h2-c1 under slim exec, epmd names the broker's
// node and its distribution port, and rabbitmqctl reaches the node through
// both (with the machine's cookie, which the broker shares).
func reachErlangPorts(t *testing.T, l *testLab, dir, hostname, addr string) {
	before := l.vxlanBytes("h1")
	names := l.start("h2-c1", true, "/usr/bin/python3", testdataPath("epmdnames.py"), addr)
	err := names.wait(20 * time.Second)
	wantOutput(t, "epmd's names", names.output(), err, fmt.Sprintf("name rabbit at port %d", distPort))
	ctl := l.start("h2-c1", true, "env", "ERL_INETRC="+filepath.Join(dir, "inetrc"),
		"rabbitmqctl", "-n", "rabbit@"+hostname, "list_queues")
	err = ctl.wait(60 * time.Second)
	wantOutput(t, "rabbitmqctl from h2-c1", ctl.output(), err, "slim\t0")
	crossed := l.vxlanBytes("h1") - before
	t.Logf("epmd's names and rabbitmqctl from the other host: %d bytes over VXLAN", crossed)
	if crossed > maxStrayOverlayBytes {
		t.Errorf("%d bytes crossed VXLAN for epmd and the distribution port", crossed)
	}
	// The CLI's node started an epmd of its own in h2-c1.
	stopEpmd(t, l, "h2-c1")
}

// stopRabbitMQ stops the broker as its users do (rabbitmqctl shutdown
// waits until the node is down), then epmd, and checks that every host
// listener went with them.
func stopRabbitMQ(t *testing.T, l *testLab, broker *program, addr string, listeners map[int]netip.AddrPort) {
	ctl := l.start("h1-c1", false, "rabbitmqctl", "shutdown")
	if err := ctl.wait(60 * time.Second); err != nil {
		t.Errorf("rabbitmqctl shutdown: %v\n%s", err, tail(ctl.output(), 10))
	}
	if err := broker.wait(20 * time.Second); err != nil {
		t.Errorf("rabbitmq-server after rabbitmqctl shutdown: %v\n%s", err, tail(broker.output(), 10))
	}
	stopEpmd(t, l, "h1-c1")
	// The entry goes at epmd's withdrawal (UNLISTEN); its host listener
	// closes as the process ends, which was seen to take up to 100 ms.
	deadline := time.Now().Add(5 * time.Second)
	for port, listener := range listeners {
		for _, h := range []string{"h1", "h2"} {
			l.waitForDirectoryGone(h, addr, port, 5*time.Second)
		}
		for l.listenerBacklog("h1", listener) >= 0 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if l.listenerBacklog("h1", listener) >= 0 {
			t.Errorf("RabbitMQ stopped, the host listener %s of port %d still listens", listener, port)
		}
	}
}

// stopEpmd stops the epmd daemon of node (epmd -kill, over loopback).
func stopEpmd(t *testing.T, l *testLab, node string) {
	p := l.start(node, false, "epmd", "-kill")
	if err := p.wait(10 * time.Second); err != nil {
		t.Errorf("epmd -kill in %s: %v\n%s", node, err, p.output())
	}
}
