// goapp is a Go program for the supervised path's tests (built by the
// test with CGO_ENABLED=0, or with cgo). Commands:
//
//	goapp serve ADDR [NETWORK]  net/http server: GET / answers "peer=IP:PORT local=IP:PORT",
//	                            GET /big 1 MiB; listens with net.Listen(NETWORK, ADDR), NETWORK
//	                            tcp4 unless given ("tcp" with ":PORT": Go's default, a dual-stack
//	                            AF_INET6 socket)
//	goapp get URL N [from6]     N requests (new connection each), prints each answer (or its
//	                            size), then "done N"; with from6 each connection is dialed from
//	                            [::] (an AF_INET6 socket to the IPv4 address, v4-mapped) and its
//	                            socket's family printed: "domain=N"
//	goapp echo ADDR [storm]     TCP echo server; first line it writes: "HELLO peer=... local=...";
//	                            with storm, the process sends itself a signal every 100 µs
//	goapp hold ADDR N ROUNDS [SECONDS]
//	                            N connections to an echo server at once, ROUNDS pings on each,
//	                            "held N", then keeps them SECONDS before closing
//	goapp dialfrom PORT ADDR    connects to an echo server from local port PORT (bound first),
//	                            prints its HELLO line, keeps the connection 2 s
//	goapp crr ADDR N            N connections one after the other to an echo server, each
//	                            closed once its HELLO came: "crr N us PER_CONNECTION"
//	goapp rr ADDR N             N one-line round trips on one connection: "rr N us PER_TRIP"
//	goapp stream ADDR MIB       MIB MiB through an echo server and back: "stream MIB MBps RATE"
//	goapp churn ADDR SECONDS    connect, ping, close in a loop from 8 goroutines while the
//	                            process spins (preemption signals); "churn ok=K fail=F"
//	goapp relisten ADDR CYCLES PER
//	                            CYCLES times: listens on ADDR ("cycle C fd N": the listener's
//	                            fd number), answers PER connections with a HELLO line each
//	                            and closes them, closes the listener; then "relisten done"
//	goapp firstdial ADDR        "dialing", then dials an echo server every 0.5 ms until a
//	                            connection is made (for 20 s at most: a server that is
//	                            starting), prints its HELLO line ("first HELLO ...") and the
//	                            number of refused dials, keeps the connection 1 s
//	goapp redial ADDR N         N connections one after the other, each until its HELLO line
//	                            came (a refused or reset one is dialed again, for 10 s at
//	                            most); "redial ok=K retries=R timeouts=T" (T: HELLO lines
//	                            that did not come within 5 s)
package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: goapp serve|get|echo|hold|churn ...")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "serve":
		network := "tcp4"
		if len(os.Args) > 3 {
			network = os.Args[3]
		}
		err = serve(network, os.Args[2])
	case "get":
		err = get(os.Args[2], atoi(os.Args[3]), len(os.Args) > 4 && os.Args[4] == "from6")
	case "echo":
		if len(os.Args) > 3 && os.Args[3] == "storm" {
			go storm()
		}
		err = echo(os.Args[2])
	case "hold":
		linger := 0
		if len(os.Args) > 5 {
			linger = atoi(os.Args[5])
		}
		err = hold(os.Args[2], atoi(os.Args[3]), atoi(os.Args[4]), linger)
	case "crr":
		err = crr(os.Args[2], atoi(os.Args[3]))
	case "rr":
		err = rr(os.Args[2], atoi(os.Args[3]))
	case "stream":
		err = stream(os.Args[2], atoi(os.Args[3]))
	case "dialfrom":
		err = dialFrom(atoi(os.Args[2]), os.Args[3])
	case "churn":
		err = churn(os.Args[2], atoi(os.Args[3]))
	case "relisten":
		err = relisten(os.Args[2], atoi(os.Args[3]), atoi(os.Args[4]))
	case "redial":
		err = redial(os.Args[2], atoi(os.Args[3]))
	case "firstdial":
		err = firstDial(os.Args[2])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Println("FAIL", err)
		os.Exit(1)
	}
}

func atoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		fmt.Println("FAIL bad number", s)
		os.Exit(2)
	}
	return n
}

func serve(network, addr string) error {
	l, err := net.Listen(network, addr)
	if err != nil {
		return err
	}
	fmt.Println("listening on", l.Addr())
	big := make([]byte, 1<<20)
	return http.Serve(l, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/big" {
			w.Write(big)
			return
		}
		local := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
		fmt.Fprintf(w, "peer=%s local=%s", r.RemoteAddr, local)
	}))
}

func get(url string, n int, from6 bool) error {
	transport := &http.Transport{DisableKeepAlives: true}
	if from6 {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv6unspecified}}
		transport.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := d.DialContext(ctx, network, addr)
			if err == nil {
				fmt.Printf("domain=%d\n", socketDomain(c))
			}
			return c, err
		}
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: transport}
	for i := range n {
		resp, err := client.Get(url)
		if err != nil {
			return fmt.Errorf("request %d: %w", i, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return fmt.Errorf("request %d: %w", i, err)
		}
		if len(body) > 200 {
			fmt.Printf("answer %d bytes\n", len(body))
		} else {
			fmt.Printf("answer %s\n", body)
		}
	}
	fmt.Println("done", n)
	return nil
}

// socketDomain is the address family of a connection's socket (SO_DOMAIN).
func socketDomain(c net.Conn) int {
	raw, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		return -1
	}
	domain := -1
	raw.Control(func(fd uintptr) {
		if v, err := syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_DOMAIN); err == nil {
			domain = v
		}
	})
	return domain
}

func echo(addr string) error {
	l, err := net.Listen("tcp4", addr)
	if err != nil {
		return err
	}
	fmt.Println("listening on", l.Addr())
	for {
		c, err := l.Accept()
		if err != nil {
			return err
		}
		go func() {
			defer c.Close()
			fmt.Fprintf(c, "HELLO peer=%s local=%s\n", c.RemoteAddr(), c.LocalAddr())
			io.Copy(c, c)
		}()
	}
}

// dialDeadline bounds each connection's exchanges.
var dialDeadline = 60 * time.Second

// dialEcho connects to an echo server and reads its HELLO line.
func dialEcho(addr string) (net.Conn, *bufio.Reader, string, error) {
	c, err := net.DialTimeout("tcp4", addr, 10*time.Second)
	if err != nil {
		return nil, nil, "", err
	}
	c.SetDeadline(time.Now().Add(dialDeadline))
	r := bufio.NewReader(c)
	hello, err := r.ReadString('\n')
	if err != nil {
		c.Close()
		return nil, nil, "", fmt.Errorf("read HELLO: %w", err)
	}
	return c, r, hello, nil
}

func ping(c net.Conn, r *bufio.Reader, msg string) error {
	if _, err := fmt.Fprintln(c, msg); err != nil {
		return err
	}
	line, err := r.ReadString('\n')
	if err != nil {
		return err
	}
	if line != msg+"\n" {
		return fmt.Errorf("echo %q, want %q", line, msg)
	}
	return nil
}

func hold(addr string, n, rounds, linger int) error {
	type conn struct {
		c net.Conn
		r *bufio.Reader
	}
	conns := make([]conn, n)
	for i := range conns {
		c, r, hello, err := dialEcho(addr)
		if err != nil {
			return fmt.Errorf("connection %d: %w", i, err)
		}
		if i == 0 {
			fmt.Printf("first %s", hello)
			fmt.Printf("addr local=%s peer=%s\n", c.LocalAddr(), c.RemoteAddr())
		}
		conns[i] = conn{c, r}
	}
	for round := range rounds {
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for i, cn := range conns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := ping(cn.c, cn.r, fmt.Sprintf("ping %d %d", round, i)); err != nil {
					errs <- fmt.Errorf("connection %d round %d: %w", i, round, err)
				}
			}()
		}
		wg.Wait()
		close(errs)
		if err := <-errs; err != nil {
			return err
		}
	}
	fmt.Println("held", n)
	time.Sleep(time.Duration(linger) * time.Second)
	for _, cn := range conns {
		cn.c.Close()
	}
	return nil
}

func churn(addr string, seconds int) error {
	dialDeadline = 5 * time.Second
	var ok, fail atomic.Int64
	var firstErr atomic.Value
	stop := time.Now().Add(time.Duration(seconds) * time.Second)
	var wg sync.WaitGroup
	// Spinning goroutines keep the scheduler preempting (SIGURG).
	var spin atomic.Bool
	spin.Store(true)
	for range 2 {
		go func() {
			x := 0
			for spin.Load() {
				x++
			}
		}()
	}
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(stop) {
				c, r, _, err := dialEcho(addr)
				if err == nil {
					err = ping(c, r, "churn")
					c.Close()
				}
				if err != nil {
					fail.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				ok.Add(1)
			}
		}()
	}
	wg.Wait()
	spin.Store(false)
	fmt.Printf("churn ok=%d fail=%d\n", ok.Load(), fail.Load())
	if e := firstErr.Load(); e != nil {
		return fmt.Errorf("first failure: %s", e)
	}
	return nil
}

// storm sends this process SIGURG (which the Go runtime takes for its own
// preemption signal and ignores otherwise) every 100 µs: the kernel hands
// each to one of its threads, often one blocked in a system call.
func storm() {
	for {
		syscall.Kill(os.Getpid(), syscall.SIGURG)
		time.Sleep(100 * time.Microsecond)
	}
}

func dialFrom(port int, addr string) error {
	d := net.Dialer{LocalAddr: &net.TCPAddr{Port: port}, Timeout: 10 * time.Second}
	c, err := d.Dial("tcp4", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	hello, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return fmt.Errorf("read HELLO: %w", err)
	}
	fmt.Print("from ", hello)
	time.Sleep(2 * time.Second)
	return nil
}

func crr(addr string, n int) error {
	start := time.Now()
	var dialing time.Duration
	for i := range n {
		t0 := time.Now()
		c, err := net.DialTimeout("tcp4", addr, 10*time.Second)
		if err != nil {
			return fmt.Errorf("connection %d: %w", i, err)
		}
		dialing += time.Since(t0)
		c.SetDeadline(time.Now().Add(dialDeadline))
		if _, err := bufio.NewReader(c).ReadString('\n'); err != nil {
			return fmt.Errorf("connection %d: read HELLO: %w", i, err)
		}
		c.Close()
	}
	total := time.Since(start)
	fmt.Printf("crr %d us %.1f (dial %.1f, then HELLO %.1f)\n", n, us(total, n), us(dialing, n), us(total-dialing, n))
	return nil
}

func us(d time.Duration, n int) float64 { return float64(d.Microseconds()) / float64(n) }

func rr(addr string, n int) error {
	c, r, _, err := dialEcho(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	start := time.Now()
	for range n {
		if err := ping(c, r, "x"); err != nil {
			return err
		}
	}
	fmt.Printf("rr %d us %.1f\n", n, float64(time.Since(start).Microseconds())/float64(n))
	return nil
}

func stream(addr string, mib int) error {
	c, r, _, err := dialEcho(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	total := int64(mib) << 20
	start := time.Now()
	errs := make(chan error, 1)
	go func() {
		buf := make([]byte, 256<<10)
		var sent int64
		for sent < total {
			n, err := c.Write(buf[:min(int64(len(buf)), total-sent)])
			if err != nil {
				errs <- err
				return
			}
			sent += int64(n)
		}
		errs <- nil
	}()
	if _, err := io.CopyN(io.Discard, r, total); err != nil {
		return err
	}
	if err := <-errs; err != nil {
		return err
	}
	fmt.Printf("stream %d MBps %.0f\n", mib, float64(total)/time.Since(start).Seconds()/1e6)
	return nil
}

func relisten(addr string, cycles, per int) error {
	for c := range cycles {
		l, err := net.Listen("tcp4", addr)
		if err != nil {
			return fmt.Errorf("cycle %d: %w", c, err)
		}
		if c == 0 {
			fmt.Println("listening on", l.Addr())
		}
		fmt.Printf("cycle %d fd %d\n", c, listenerFD(l))
		for range per {
			conn, err := l.Accept()
			if err != nil {
				return fmt.Errorf("cycle %d: %w", c, err)
			}
			fmt.Fprintf(conn, "HELLO peer=%s local=%s\n", conn.RemoteAddr(), conn.LocalAddr())
			conn.Close()
		}
		l.Close()
	}
	fmt.Println("relisten done")
	return nil
}

func listenerFD(l net.Listener) int {
	fd := -1
	if raw, err := l.(*net.TCPListener).SyscallConn(); err == nil {
		raw.Control(func(s uintptr) { fd = int(s) })
	}
	return fd
}

func redial(addr string, n int) error {
	var retries, timeouts int
	for i := range n {
		for deadline := time.Now().Add(10 * time.Second); ; {
			err := helloOnce(addr)
			if err == nil {
				break
			}
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				timeouts++
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("connection %d: %w (retries=%d timeouts=%d)", i, err, retries, timeouts)
			}
			retries++
			time.Sleep(10 * time.Millisecond)
		}
	}
	fmt.Printf("redial ok=%d retries=%d timeouts=%d\n", n, retries, timeouts)
	return nil
}

func helloOnce(addr string) error {
	c, err := net.DialTimeout("tcp4", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	_, err = bufio.NewReader(c).ReadString('\n')
	return err
}

func firstDial(addr string) error {
	fmt.Println("dialing")
	for refused, deadline := 0, time.Now().Add(20*time.Second); ; refused++ {
		c, err := net.DialTimeout("tcp4", addr, 5*time.Second)
		if err != nil {
			if time.Now().After(deadline) {
				return fmt.Errorf("%w (%d dials refused)", err, refused)
			}
			time.Sleep(500 * time.Microsecond)
			continue
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		hello, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			return fmt.Errorf("read HELLO: %w", err)
		}
		fmt.Printf("first %srefused %d\n", hello, refused)
		time.Sleep(time.Second)
		return nil
	}
}
