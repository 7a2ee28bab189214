package supervise

import (
	"encoding/json"
	"fmt"
	"time"
)

// Config is what slim exec hands the supervisor.
type Config struct {
	// RouterSock is the router's socket; its directory table sits beside
	// it (DIR/directory).
	RouterSock string `json:"router_sock"`
	// Secure says the router runs in secure mode: its cgroup programs
	// answer getsockname and getpeername of host sockets, so those calls
	// are not trapped, and the supervisor uses the router connections
	// slim exec made (the router answers POOL and LISTEN only to the
	// enrolled program) instead of dialing its own.
	Secure bool `json:"secure,omitempty"`
	// Dialer says the last of the files slim exec hands over is a link to
	// the program's router dialer (secure mode), which makes new router
	// connections in the program's name (internal/launch/dialer_linux.go).
	Dialer bool `json:"dialer,omitempty"`
	// TimeoutMS bounds each router request (SLIM_ROUTER_TIMEOUT_MS).
	TimeoutMS int `json:"timeout_ms,omitempty"`
	// Debug makes the supervisor say on stderr what it does.
	Debug bool `json:"debug,omitempty"`
}

// Encode returns the configuration as slim exec hands it over.
func (c Config) Encode() []byte {
	b, _ := json.Marshal(c)
	return b
}

// DecodeConfig parses what Encode made.
func DecodeConfig(b []byte) (Config, error) {
	var c Config
	if err := json.Unmarshal(b, &c); err != nil {
		return Config{}, fmt.Errorf("supervisor configuration: %w", err)
	}
	if c.RouterSock == "" {
		return Config{}, fmt.Errorf("supervisor configuration: no router socket")
	}
	return c, nil
}

func (c Config) timeout() time.Duration {
	if c.TimeoutMS > 0 {
		return time.Duration(c.TimeoutMS) * time.Millisecond
	}
	return 500 * time.Millisecond
}
