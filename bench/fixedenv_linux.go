package bench

import (
	"bytes"
	"context"
	_ "embed" // for go:embed
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	prebuilt "github.com/slimnet/slim/embed"
	"github.com/slimnet/slim/lab"
)

//go:embed kafka/SlimKafka.java
var kafkaSource []byte

// fixedEnv is what the samples of a fixed-load bench share: a directory
// with the load generator, the compiled Kafka stand-in and PostgreSQL's
// database, and the bench's cgroups. Removed at the end of the bench.
type fixedEnv struct {
	dir          string
	loadgen      string
	cgroups      *cgroupTree
	ksoftirqd    []int
	node         lab.Node // where preparations that start servers run
	prepared     map[string]error
	pgData       string
	kafkaClasses string
}

func newFixedEnv(node lab.Node) (env *fixedEnv, err error) {
	env, err = newSharedEnv(node)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, env.close())
		}
	}()
	dir := env.dir
	env.loadgen = filepath.Join(dir, "slim-loadgen")
	if err := os.WriteFile(env.loadgen, prebuilt.Loadgen(), 0o755); err != nil {
		return nil, fmt.Errorf("extracting slim-loadgen: %w", err)
	}
	if env.ksoftirqd, err = ksoftirqdThreads(); err != nil {
		return nil, err
	}
	if env.cgroups, err = newCgroupTree(); err != nil {
		return nil, err
	}
	return env, nil
}

// newSharedEnv is a fixedEnv with only its directory, for the usual
// tests' preparations (a test's prepare): no load generator, no cgroups.
func newSharedEnv(node lab.Node) (*fixedEnv, error) {
	dir, err := os.MkdirTemp("", "slim-bench-fixed-")
	if err != nil {
		return nil, fmt.Errorf("creating the bench's shared directory: %w", err)
	}
	env := &fixedEnv{dir: dir, node: node, prepared: map[string]error{}}
	// Servers that drop root (PostgreSQL) reach their files through it.
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, errors.Join(err, env.close())
	}
	return env, nil
}

func (env *fixedEnv) close() error {
	var errs []error
	if env.cgroups != nil {
		errs = append(errs, env.cgroups.remove())
	}
	if err := os.RemoveAll(env.dir); err != nil {
		errs = append(errs, fmt.Errorf("removing %s: %w", env.dir, err))
	}
	return errors.Join(errs...)
}

func (env *fixedEnv) newProbe() *cpuProbe {
	return &cpuProbe{mount: env.cgroups.mount, ksoftirqd: env.ksoftirqd}
}

// prepare runs an application's preparation, once per bench.
func (env *fixedEnv) prepare(ctx context.Context, app fixedApp, tools map[string]string) error {
	return env.prepareOnce(ctx, app.ID, app.prepare, tools)
}

// preparation readies what samples share (a database, compiled classes).
type preparation func(ctx context.Context, env *fixedEnv, tools map[string]string) error

// prepareOnce runs a preparation (none if nil) once per bench and ID,
// and returns its error every time.
func (env *fixedEnv) prepareOnce(ctx context.Context, id string, prepare preparation, tools map[string]string) error {
	if prepare == nil {
		return nil
	}
	if err, done := env.prepared[id]; done {
		return err
	}
	err := prepare(ctx, env, tools)
	env.prepared[id] = err
	return err
}

// prepareKafka compiles the Kafka stand-in.
func prepareKafka(ctx context.Context, env *fixedEnv, tools map[string]string) error {
	src := filepath.Join(env.dir, "kafka-src")
	env.kafkaClasses = filepath.Join(env.dir, "kafka")
	for _, dir := range []string{src, env.kafkaClasses} {
		if err := os.Mkdir(dir, 0o755); err != nil {
			return err
		}
	}
	file := filepath.Join(src, "SlimKafka.java")
	if err := os.WriteFile(file, kafkaSource, 0o644); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, prepareTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, tools["javac"], "-d", env.kafkaClasses, file).CombinedOutput()
	if err != nil {
		return fmt.Errorf("compiling the Kafka stand-in: %w: %s", err, tail(out))
	}
	return nil
}

// prepareTimeout bounds each step of a preparation.
const prepareTimeout = 2 * time.Minute

// preparePostgres creates the database every PostgreSQL sample serves:
// initdb, trust for the lab's addresses, pgbench's tables (scale 1),
// loaded through a unix socket by a server started for that alone.
func preparePostgres(ctx context.Context, env *fixedEnv, tools map[string]string) error {
	owner, err := user.Lookup("postgres")
	if err != nil {
		return fmt.Errorf("PostgreSQL's user: %w (make deps installs postgresql)", err)
	}
	uid, _ := strconv.Atoi(owner.Uid)
	gid, _ := strconv.Atoi(owner.Gid)
	base := filepath.Join(env.dir, "postgres")
	socket := filepath.Join(base, "socket")
	env.pgData = filepath.Join(base, "data")
	for _, dir := range []string{base, socket} {
		if err := os.Mkdir(dir, 0o700); err != nil {
			return err
		}
		if err := os.Chown(dir, uid, gid); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, prepareTimeout)
	defer cancel()
	initdb := asPostgres(tools[pgTool("initdb")], "-D", env.pgData, "-A", "trust", "-U", "postgres", "--no-sync")
	initdb[0] = tools["setpriv"]
	if out, err := exec.CommandContext(ctx, initdb[0], initdb[1:]...).CombinedOutput(); err != nil {
		return fmt.Errorf("initdb: %w: %s", err, tail(out))
	}
	// Clients connect from the wire (host column) or the overlay.
	hba := "host all all 198.18.0.0/15 trust\n"
	f, err := os.OpenFile(filepath.Join(env.pgData, "pg_hba.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(hba)
	if err = errors.Join(err, f.Close()); err != nil {
		return err
	}
	return env.withPostgres(ctx, tools, socket, func() error {
		cmd := exec.CommandContext(ctx, tools[pgTool("pgbench")], "-i", "-q", "-h", socket, "-U", "postgres", "postgres")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("pgbench -i: %w: %s", err, tail(out))
		}
		return nil
	})
}

// withPostgres runs fn while a PostgreSQL server serves the database on a
// unix socket only, in the node's namespace.
func (env *fixedEnv) withPostgres(ctx context.Context, tools map[string]string, socket string, fn func() error) (err error) {
	argv := asPostgres(tools[pgTool("postgres")], "-D", env.pgData, "-c", "listen_addresses=", "-k", socket, "-c", "fsync=off")
	argv[0] = tools["setpriv"]
	cmd := exec.Command(argv[0], argv[1:]...)
	output := newTailBuffer(4096)
	cmd.Stdout, cmd.Stderr = output, output
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := env.node.Start(cmd); err != nil {
		return fmt.Errorf("starting PostgreSQL: %w", err)
	}
	srv := &server{name: "postgres", cmd: cmd, output: output, done: make(chan struct{})}
	go func() {
		srv.waitErr = cmd.Wait()
		close(srv.done)
	}()
	defer func() { err = errors.Join(err, srv.stop()) }()
	const ready = "database system is ready to accept connections"
	if err := poll(ctx, srv, "print "+strconv.Quote(ready), func() error {
		if !bytes.Contains(output.Bytes(), []byte(ready)) {
			return errors.New("not yet")
		}
		return nil
	}); err != nil {
		return err
	}
	return fn()
}
