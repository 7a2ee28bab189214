package e2e

import (
	"os/exec"
	"testing"

	"github.com/slimnet/slim/internal/testenv"
)

// Servers of Debian 12 that Slim was not written for, under slim exec with
// their defaults and what a user writes to run them, across the lab's two
// hosts: vsftpd (FTP: addresses in its byte stream, a listener per data
// connection), RabbitMQ (Erlang: the broker, its port mapper epmd and its
// distribution port) with Python's pika, and Docker's registry (a Go
// program: the supervised path) with curl.

// TestIntegrationMoreServices: each server does its job for clients under
// slim exec on the other host, those clients' connections carry nothing
// over VXLAN, clients without Slim still reach it, and stopping it leaves
// no directory entry or host listener behind.
func TestIntegrationMoreServices(t *testing.T) {
	testenv.Tools(t, "vsftpd", "rabbitmq-server", "rabbitmqctl", "epmd", "docker-registry", "curl", "/usr/bin/python3")
	err := exec.Command("/usr/bin/python3", "-c", "import pika").Run()
	testenv.Require(t, err == nil, "Debian's python3-pika is not installed (make deps installs it)")
	l := newLab(t, "mors")
	t.Run("vsftpd", func(t *testing.T) {
		l.t = t
		runVsftpd(t, l)
	})
	t.Run("vsftpd SLIM_DEBUG", func(t *testing.T) {
		l.t = t
		runVsftpdDebug(t, l)
	})
	t.Run("rabbitmq", func(t *testing.T) {
		l.t = t
		runRabbitMQ(t, l)
	})
	t.Run("docker-registry", func(t *testing.T) {
		l.t = t
		runRegistry(t, l)
	})
}
