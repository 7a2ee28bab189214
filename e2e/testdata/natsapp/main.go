// natsapp is a NATS client for the supervised path's tests (built by the
// test with CGO_ENABLED=0). It speaks the NATS client protocol itself
// (INFO, CONNECT, SUB, PUB, MSG, PING/PONG), with no client library.
// SERVERS is a comma-separated list of HOST:PORT. Commands:
//
//	natsapp sub NAME SUBJECT N SECONDS SERVERS
//	        subscribes to SUBJECT, and to hello.SUBJECT, whose messages it
//	        answers with NAME, on the first server of SERVERS that takes it:
//	        "subscribed NAME on ADDR client_ip=IP" (the address the server
//	        sees) once the server has the subscription. A lost connection
//	        is said ("lost NAME ADDR: ERR") and the subscription made again
//	        on the next server that takes it, the list in turn, as NATS
//	        clients do. It stops at message N-1 or after SECONDS in all:
//	        "sub NAME got=K dup=D disorder=O missing=RANGES reconnects=R"
//	        (exit status 1 if time ran out)
//	natsapp pub SUBJECT N RATE WANT SECONDS SERVER
//	        publishes hello.SUBJECT with a reply subject until WANT
//	        subscribers answered ("ready NAMES": their subscriptions have
//	        reached SERVER through the routes), then messages 0 to N-1 on
//	        SUBJECT, RATE a second (0: at once), msgSize bytes each, then
//	        waits for a PONG (SERVER has them all): "pub sent=N"
//	natsapp roundtrip SERVER N
//	        subscribes to an inbox and publishes N messages to it on the
//	        same connection: "roundtrip N client_ip=IP"
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// msgSize is the size of every numbered message's payload.
const msgSize = 256 // natsMsgSize in the test

func main() {
	var err error
	args := os.Args[1:]
	switch {
	case len(args) == 6 && args[0] == "sub":
		err = sub(args[1], args[2], atoi(args[3]), atoi(args[4]), strings.Split(args[5], ","))
	case len(args) == 7 && args[0] == "pub":
		err = pub(args[1], atoi(args[2]), atoi(args[3]), atoi(args[4]), atoi(args[5]), args[6])
	case len(args) == 3 && args[0] == "roundtrip":
		err = roundtrip(args[1], atoi(args[2]))
	default:
		err = fmt.Errorf("usage: natsapp sub|pub|roundtrip ... (see its source)")
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

// conn is a client connection to a NATS server.
type conn struct {
	addr     string
	c        net.Conn
	r        *bufio.Reader
	mu       sync.Mutex // serializes writes
	w        *bufio.Writer
	clientIP string // the client's address as the server sees it (INFO)
}

// frame is one protocol message from the server.
type frame struct {
	op                  string // INFO, MSG, PING, PONG, +OK, -ERR
	rest                string // the line after op
	subject, sid, reply string // MSG
	payload             []byte // MSG
}

// dial connects to addr, reads INFO, sends CONNECT and waits for the
// PONG that says the server took it.
func dial(addr, name string) (*conn, error) {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return nil, err
	}
	n := &conn{addr: addr, c: c, r: bufio.NewReaderSize(c, 64<<10), w: bufio.NewWriterSize(c, 64<<10)}
	if err := n.handshake(name); err != nil {
		c.Close()
		return nil, fmt.Errorf("%s: %w", addr, err)
	}
	return n, nil
}

func (n *conn) handshake(name string) error {
	n.c.SetDeadline(time.Now().Add(5 * time.Second))
	defer n.c.SetDeadline(time.Time{})
	f, err := n.read()
	if err != nil {
		return err
	}
	if f.op != "INFO" {
		return fmt.Errorf("first message %s, want INFO", f.op)
	}
	var info struct {
		ClientIP string `json:"client_ip"`
	}
	if err := json.Unmarshal([]byte(f.rest), &info); err != nil {
		return fmt.Errorf("INFO: %w", err)
	}
	n.clientIP = info.ClientIP
	options, _ := json.Marshal(map[string]any{"verbose": false, "pedantic": false, "name": name,
		"lang": "go", "version": "0.0.1", "protocol": 1})
	if err := n.send("CONNECT %s\r\nPING\r\n", options); err != nil {
		return err
	}
	for {
		f, err := n.read()
		switch {
		case err != nil:
			return err
		case f.op == "-ERR":
			return fmt.Errorf("-ERR %s", f.rest)
		case f.op == "PONG":
			return nil
		}
	}
}

// send writes one or more protocol lines and flushes them.
func (n *conn) send(format string, args ...any) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	fmt.Fprintf(n.w, format, args...)
	return n.w.Flush()
}

// publish queues a PUB; flush sends what is queued.
func (n *conn) publish(subject, reply string, payload []byte) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if reply == "" {
		fmt.Fprintf(n.w, "PUB %s %d\r\n", subject, len(payload))
	} else {
		fmt.Fprintf(n.w, "PUB %s %s %d\r\n", subject, reply, len(payload))
	}
	n.w.Write(payload)
	n.w.WriteString("\r\n")
}

func (n *conn) flush() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.w.Flush()
}

// read reads the next protocol message.
func (n *conn) read() (frame, error) {
	line, err := n.r.ReadString('\n')
	if err != nil {
		return frame{}, err
	}
	op, rest, _ := strings.Cut(strings.TrimRight(line, "\r\n"), " ")
	f := frame{op: strings.ToUpper(op), rest: rest}
	if f.op != "MSG" {
		return f, nil
	}
	args := strings.Fields(rest)
	if len(args) != 3 && len(args) != 4 {
		return f, fmt.Errorf("bad MSG line %q", line)
	}
	size, err := strconv.Atoi(args[len(args)-1])
	if err != nil {
		return f, fmt.Errorf("bad MSG line %q", line)
	}
	f.subject, f.sid = args[0], args[1]
	if len(args) == 4 {
		f.reply = args[2]
	}
	f.payload = make([]byte, size+2)
	if _, err := io.ReadFull(n.r, f.payload); err != nil {
		return f, err
	}
	if string(f.payload[size:]) != "\r\n" {
		return f, fmt.Errorf("MSG payload of %d bytes not followed by CRLF", size)
	}
	f.payload = f.payload[:size]
	return f, nil
}

// numbered is message seq's payload: its number, padded to msgSize.
func numbered(seq int) []byte {
	p := []byte(fmt.Sprintf("%08d ", seq))
	for len(p) < msgSize {
		p = append(p, 'x')
	}
	return p
}

func seqOf(payload []byte) (int, error) {
	if len(payload) != msgSize {
		return 0, fmt.Errorf("payload of %d bytes, want %d", len(payload), msgSize)
	}
	return strconv.Atoi(string(payload[:8]))
}
