// Command peer is the Go client and server of `slim bench --supervised`:
// built static (CGO_ENABLED=0) by the bench, it is the kind of program
// `slim exec` runs under its supervisor rather than with the shim. Its C
// twin, bench/peerc/peer.c, speaks the same protocol and prints the same
// lines, so that the columns compare the path, not the program.
//
//	peer serve ADDR PORT                   serve until killed; prints "listening"
//	peer stream|rr|crr ADDR PORT SECONDS   run the client; prints "result RATE"
//
// The client's first byte says what a connection is for: 's' (stream) is
// read and discarded until the client shuts down its side, then answered
// with the count of bytes received (8 bytes, big-endian); 'c' (one
// connection per transaction) is echoed and the server closes first, so
// that TIME_WAIT stays with the server and a client making tens of
// thousands of connections does not run out of ports; any other byte
// starts an echo of every byte until the client closes. Rates: stream in
// Gbit/s as received by the server, rr in transactions (1 byte each way)
// per second on one connection, crr in connections (connect, 1 byte each
// way, close) per second, one after the other.
package main

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"time"
)

const streamChunk = 128 << 10

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "peer:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) < 3 {
		return fmt.Errorf("usage: peer serve ADDR PORT | peer stream|rr|crr ADDR PORT SECONDS")
	}
	target := net.JoinHostPort(args[1], args[2])
	if args[0] == "serve" {
		return serve(target)
	}
	if len(args) != 4 {
		return fmt.Errorf("%s needs ADDR PORT SECONDS", args[0])
	}
	seconds, err := strconv.Atoi(args[3])
	if err != nil || seconds < 1 {
		return fmt.Errorf("bad duration %q", args[3])
	}
	duration := time.Duration(seconds) * time.Second
	var rate float64
	switch args[0] {
	case "stream":
		rate, err = stream(target, duration)
	case "rr":
		rate, err = rr(target, duration)
	case "crr":
		rate, err = crr(target, duration)
	default:
		return fmt.Errorf("unknown command %q", args[0])
	}
	if err != nil {
		return err
	}
	fmt.Printf("result %.3f\n", rate)
	return nil
}

func serve(addr string) error {
	ln, err := net.Listen("tcp4", addr)
	if err != nil {
		return err
	}
	fmt.Println("listening")
	for {
		conn, err := ln.Accept()
		if err != nil {
			return err
		}
		go handle(conn.(*net.TCPConn))
	}
}

func handle(conn *net.TCPConn) {
	defer conn.Close()
	first := make([]byte, 1)
	if _, err := io.ReadFull(conn, first); err != nil {
		return
	}
	switch first[0] {
	case 's':
		n, err := io.Copy(io.Discard, conn)
		if err != nil {
			return
		}
		_, _ = conn.Write(binary.BigEndian.AppendUint64(nil, uint64(n)))
	case 'c':
		_, _ = conn.Write(first)
	default:
		if _, err := conn.Write(first); err != nil {
			return
		}
		buf := make([]byte, 64<<10)
		for {
			n, err := conn.Read(buf)
			if n > 0 {
				if _, werr := conn.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}
}

func stream(target string, duration time.Duration) (float64, error) {
	conn, err := net.Dial("tcp4", target)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	tcp := conn.(*net.TCPConn)
	start := time.Now()
	if _, err := tcp.Write([]byte{'s'}); err != nil {
		return 0, err
	}
	buf := make([]byte, streamChunk)
	for time.Since(start) < duration {
		if _, err := tcp.Write(buf); err != nil {
			return 0, err
		}
	}
	if err := tcp.CloseWrite(); err != nil {
		return 0, err
	}
	count := make([]byte, 8)
	if _, err := io.ReadFull(tcp, count); err != nil {
		return 0, fmt.Errorf("reading the count of bytes received: %w", err)
	}
	elapsed := time.Since(start).Seconds()
	return float64(binary.BigEndian.Uint64(count)) * 8 / elapsed / 1e9, nil
}

func rr(target string, duration time.Duration) (float64, error) {
	conn, err := net.Dial("tcp4", target)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	buf := []byte{'r'}
	start := time.Now()
	n := 0
	for ; time.Since(start) < duration; n++ {
		if _, err := conn.Write(buf); err != nil {
			return 0, err
		}
		if _, err := io.ReadFull(conn, buf); err != nil {
			return 0, err
		}
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

func crr(target string, duration time.Duration) (float64, error) {
	buf := make([]byte, 1)
	start := time.Now()
	n := 0
	for ; time.Since(start) < duration; n++ {
		conn, err := net.Dial("tcp4", target)
		if err != nil {
			return 0, fmt.Errorf("connection %d: %w", n+1, err)
		}
		buf[0] = 'c'
		if _, err = conn.Write(buf); err == nil {
			_, err = io.ReadFull(conn, buf)
		}
		conn.Close()
		if err != nil {
			return 0, fmt.Errorf("connection %d: %w", n+1, err)
		}
	}
	return float64(n) / time.Since(start).Seconds(), nil
}
