package main

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"
)

func pub(subject string, n, rate, want, seconds int, server string) error {
	deadline := time.Now().Add(time.Duration(seconds) * time.Second)
	c, err := dial(server, "pub")
	if err != nil {
		return err
	}
	defer c.c.Close()
	c.c.SetReadDeadline(deadline)
	inbox := fmt.Sprintf("_INBOX.pub%d", os.Getpid())
	frames := make(chan frame, 256)
	go c.readLoop(frames)
	if err := c.send("SUB %s 1\r\nPING\r\n", inbox); err != nil {
		return err
	}
	if err := awaitPong(frames); err != nil {
		return err
	}
	if err := c.awaitSubscribers(frames, "hello."+subject, inbox, want); err != nil {
		return err
	}
	start := time.Now()
	if err := c.publishNumbered(subject, n, rate); err != nil {
		return err
	}
	if err := c.send("PING\r\n"); err != nil {
		return err
	}
	if err := awaitPong(frames); err != nil {
		return fmt.Errorf("after the last message: %w", err)
	}
	fmt.Printf("pub sent=%d in %v\n", n, time.Since(start).Round(time.Millisecond))
	return nil
}

// readLoop passes the server's messages on, answering its PINGs; an
// error ends it as a frame of op "ERR".
func (c *conn) readLoop(frames chan<- frame) {
	defer close(frames)
	for {
		f, err := c.read()
		if err == nil && f.op == "PING" {
			err = c.send("PONG\r\n")
		}
		if err != nil {
			frames <- frame{op: "ERR", rest: err.Error()}
			return
		}
		frames <- f
	}
}

// awaitPong waits for a PONG, skipping messages.
func awaitPong(frames <-chan frame) error {
	for f := range frames {
		switch f.op {
		case "PONG":
			return nil
		case "ERR", "-ERR":
			return errors.New(f.rest)
		}
	}
	return errors.New("connection closed")
}

// awaitSubscribers publishes on hello every 100 ms until want different
// subscribers answered on inbox. A subscriber subscribes to hello after
// its subject, so once its answer came, the server has both
// subscriptions.
func (c *conn) awaitSubscribers(frames <-chan frame, hello, inbox string, want int) error {
	var names []string
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for len(names) < want {
		c.publish(hello, inbox, nil)
		if err := c.flush(); err != nil {
			return err
		}
		for waiting := true; waiting && len(names) < want; {
			select {
			case f, ok := <-frames:
				if !ok || f.op == "ERR" || f.op == "-ERR" {
					return fmt.Errorf("waiting for subscribers (%d of %d): %s", len(names), want, f.rest)
				}
				if f.op == "MSG" && !slices.Contains(names, string(f.payload)) {
					names = append(names, string(f.payload))
				}
			case <-tick.C:
				waiting = false
			}
		}
	}
	slices.Sort(names)
	fmt.Println("ready", strings.Join(names, ","))
	return nil
}

// publishNumbered publishes messages 0 to n-1, rate a second in batches
// every 10 ms, or at once when rate is 0.
func (c *conn) publishNumbered(subject string, n, rate int) error {
	batch := n
	if rate > 0 {
		batch = max(1, rate/100)
	}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for seq := 0; seq < n; {
		for end := min(n, seq+batch); seq < end; seq++ {
			c.publish(subject, "", numbered(seq))
		}
		if err := c.flush(); err != nil {
			return fmt.Errorf("after message %d: %w", seq-1, err)
		}
		if seq < n {
			<-tick.C
		}
	}
	return nil
}

func roundtrip(server string, n int) error {
	c, err := dial(server, "roundtrip")
	if err != nil {
		return err
	}
	defer c.c.Close()
	c.c.SetDeadline(time.Now().Add(10 * time.Second))
	inbox := fmt.Sprintf("_INBOX.rt%d", os.Getpid())
	if err := c.send("SUB %s 1\r\nPING\r\n", inbox); err != nil {
		return err
	}
	for got := -1; got < n; {
		f, err := c.read()
		switch {
		case err != nil:
			return fmt.Errorf("after %d messages: %w", max(got, 0), err)
		case f.op == "-ERR":
			return fmt.Errorf("-ERR %s", f.rest)
		case f.op == "PONG" && got < 0: // subscribed: publish
			got = 0
			for i := range n {
				c.publish(inbox, "", numbered(i))
			}
			err = c.flush()
		case f.op == "MSG":
			seq, err2 := seqOf(f.payload)
			if err = err2; err == nil && seq != got {
				err = fmt.Errorf("message %d, want %d", seq, got)
			}
			got++
		}
		if err != nil {
			return err
		}
	}
	fmt.Printf("roundtrip %d client_ip=%s\n", n, c.clientIP)
	return nil
}
