package router

import "testing"

func TestClientBindPorts(t *testing.T) {
	for _, c := range []struct {
		local, reserved string
		peer            uint16
		want            portRange
	}{
		{"32768\t60999\n", "\n", 7946, portRange{32768, 60999}},
		{"32768 60999", "40000", 7946, portRange{40001, 60999}},
		{"32768 60999", "32768-50000,60000", 7946, portRange{50001, 59999}},
		{"1000 2000", "", 1500, portRange{1501, 2000}},
		{"1000 1100", "", 7946, portRange{1024, 1100}},
		{"40000 40000", "40000", 7946, portRange{}},
		{"40000 40001", "", 40001, portRange{40000, 40000}},
		{"40000 40010", "", 40005, portRange{40000, 40004}}, // a tie: the first run
		{"65000 65535", "", 7946, portRange{65000, 65535}},
	} {
		got, err := clientBindPorts(c.local, c.reserved, c.peer)
		if err != nil || got != c.want {
			t.Errorf("clientBindPorts(%q, %q, %d) = %v, %v; want %v", c.local, c.reserved, c.peer, got, err, c.want)
		}
	}
	for _, bad := range [][2]string{{"60999 32768", ""}, {"32768", ""}, {"a b", ""}, {"1 2", "x"}, {"1 2", "9-8"}, {"1 2", "70000"}} {
		if _, err := clientBindPorts(bad[0], bad[1], 7946); err == nil {
			t.Errorf("clientBindPorts(%q, %q): no error", bad[0], bad[1])
		}
	}
}
