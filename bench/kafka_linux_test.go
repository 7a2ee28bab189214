package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/slimnet/slim/internal/testenv"
)

// The Kafka stand-in: its broker and client on the loopback of a scratch
// namespace, at a fixed rate and then in a closed loop against the same
// broker (the second consumer starts at the log's end).
func TestKafkaStandIn(t *testing.T) {
	env := newLoadgenEnv(t)
	testenv.Tools(t, "java", "javac")
	tools, err := lookTools([]string{"java", "javac"})
	if err != nil {
		t.Fatal(err)
	}
	fixed := &fixedEnv{dir: t.TempDir()}
	if err := prepareKafka(context.Background(), fixed, tools); err != nil {
		t.Fatal(err)
	}
	s := &sample{fixed: fixed}
	port := freePort(t, env)
	broker := exec.Command(tools["java"], append(javaArgs(s)[1:], "broker", "127.0.0.1", strconv.Itoa(port), t.TempDir())...)
	output := newTailBuffer(4096)
	broker.Stdout, broker.Stderr = output, output
	broker.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := env.scratch.Do(broker.Start); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		broker.Process.Kill()
		broker.Wait()
	})
	deadline := time.Now().Add(time.Minute)
	for !bytes.Contains(output.Bytes(), []byte("slim-kafka broker listening")) {
		if time.Now().After(deadline) {
			t.Fatalf("the broker did not start: %s", output.Bytes())
		}
		time.Sleep(50 * time.Millisecond)
	}
	client := func(rate string) map[string]any {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		args := append(javaArgs(s)[1:], "client", "127.0.0.1", strconv.Itoa(port), rate, "1", "1", "100", "5")
		cmd := exec.CommandContext(ctx, tools["java"], args...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := env.scratch.Do(cmd.Start); err != nil {
			t.Fatal(err)
		}
		if err := cmd.Wait(); err != nil {
			t.Fatalf("client at %s/s: %v\n%s%s", rate, err, stdout.Bytes(), stderr.Bytes())
		}
		lines := nonEmptyLines(stdout.Bytes())
		if len(lines) != 3 || lines[0] != markerPrefix+"start" || lines[1] != markerPrefix+"end" {
			t.Fatalf("client printed %q, want the two marks and a JSON line", lines)
		}
		var doc map[string]any
		if err := json.Unmarshal([]byte(lines[2]), &doc); err != nil {
			t.Fatal(err)
		}
		result, err := parseLoadResult(stdout.Bytes())
		if err != nil {
			t.Errorf("client at %s/s: %v", rate, err)
		}
		if result.ServiceP50 <= 0 {
			t.Errorf("client at %s/s: no latency from send", rate)
		}
		return doc
	}
	fixedRun := client("5000")
	if fixedRun["scheduled"] != 5000.0 || fixedRun["completed"] != 5000.0 || fixedRun["unanswered"] != 0.0 {
		t.Errorf("at 5000/s for 1 s: %v", fixedRun)
	}
	peak := client("0")
	if peak["completed"].(float64) <= 0 || peak["unanswered"] != 0.0 {
		t.Errorf("closed loop: %v", peak)
	}
}

// freePort is a TCP port free on the scratch namespace's loopback.
func freePort(t *testing.T, env *loadgenEnv) int {
	var l net.Listener
	if err := env.scratch.Do(func() (err error) { l, err = net.Listen("tcp4", "127.0.0.1:0"); return err }); err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
