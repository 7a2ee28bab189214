package main

import (
	"fmt"
	"strings"
	"time"
)

// tally counts the numbered messages a subscriber got.
type tally struct {
	seen                     []int // by number: how many times
	last, got, dup, disorder int
}

func (t *tally) add(seq int) error {
	if seq < 0 || seq >= len(t.seen) {
		return fmt.Errorf("message %d, want 0 to %d", seq, len(t.seen)-1)
	}
	t.got++
	if t.seen[seq] > 0 {
		t.dup++
	}
	if seq < t.last {
		t.disorder++
	}
	t.seen[seq]++
	t.last = seq
	return nil
}

// done: the last message came.
func (t *tally) done() bool { return t.seen[len(t.seen)-1] > 0 }

// missing lists the numbers never seen as ranges, "none" if there are none.
func (t *tally) missing() string {
	var ranges []string
	for i := 0; i < len(t.seen); i++ {
		if t.seen[i] > 0 {
			continue
		}
		j := i
		for j+1 < len(t.seen) && t.seen[j+1] == 0 {
			j++
		}
		ranges = append(ranges, fmt.Sprintf("%d-%d", i, j))
		i = j
	}
	if len(ranges) == 0 {
		return "none"
	}
	return strings.Join(ranges, ",")
}

func sub(name, subject string, n, seconds int, servers []string) error {
	deadline := time.Now().Add(time.Duration(seconds) * time.Second)
	t := &tally{seen: make([]int, n), last: -1}
	reconnects, next := 0, 0
	var err error
	for !t.done() {
		var c *conn
		if c, next, err = dialAny(servers, next, name, deadline); err != nil {
			break
		}
		err = c.receive(name, subject, t, deadline)
		c.c.Close()
		if t.done() || time.Now().After(deadline) {
			break
		}
		fmt.Printf("lost %s %s: %v\n", name, c.addr, err)
		reconnects++
	}
	fmt.Printf("sub %s got=%d dup=%d disorder=%d missing=%s reconnects=%d\n",
		name, t.got, t.dup, t.disorder, t.missing(), reconnects)
	if !t.done() {
		return fmt.Errorf("no message %d after %d s: %v", n-1, seconds, err)
	}
	return nil
}

// dialAny connects to the first of servers, from start on and in turn,
// that takes the connection, until deadline. It returns the index to
// start from next time: the server after the one it got.
func dialAny(servers []string, start int, name string, deadline time.Time) (*conn, int, error) {
	for i := start; ; i++ {
		addr := servers[i%len(servers)]
		c, err := dial(addr, name)
		if err == nil {
			return c, (i + 1) % len(servers), nil
		}
		if time.Now().After(deadline) {
			return nil, 0, fmt.Errorf("no server took the connection: %w", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// receive subscribes on c and counts messages until the last one or an
// error. It says when the server has the subscription (its PONG), and
// answers hello.SUBJECT with name.
func (c *conn) receive(name, subject string, t *tally, deadline time.Time) error {
	c.c.SetReadDeadline(deadline)
	if err := c.send("SUB %s 1\r\nSUB hello.%s 2\r\nPING\r\n", subject, subject); err != nil {
		return err
	}
	subscribed := false
	for !t.done() {
		f, err := c.read()
		switch {
		case err != nil:
			return err
		case f.op == "PONG" && !subscribed:
			subscribed = true
			fmt.Printf("subscribed %s on %s client_ip=%s\n", name, c.addr, c.clientIP)
		case f.op == "PING":
			err = c.send("PONG\r\n")
		case f.op == "-ERR":
			err = fmt.Errorf("-ERR %s", f.rest)
		case f.op == "MSG" && f.sid == "2" && f.reply != "":
			c.publish(f.reply, "", []byte(name))
			err = c.flush()
		case f.op == "MSG" && f.sid == "1":
			var seq int
			if seq, err = seqOf(f.payload); err == nil {
				err = t.add(seq)
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}
