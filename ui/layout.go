package ui

import (
	"strings"
	"time"
)

// Column widths. At 80 cells every column shows; narrower terminals drop
// AGE and RTT first, then IN and OUT.
const (
	minContainerWidth = 9 // "CONTAINER"
	maxContainerWidth = 16
	addrWidth         = 17 // 198.19.255.254:65535 is 20; ports below 10000 fit
	maxAddrWidth      = 22
	ageWidth          = 6
	bytesWidth        = 5
	rateWidth         = 8
	rttWidth          = 5
)

// tableLayout is the widths of the table's columns; 0 hides a column.
type tableLayout struct {
	container, source, destination, age, in, out, rate, rtt int
}

func layoutFor(width, longestContainer int) tableLayout {
	l := tableLayout{container: minContainerWidth, age: ageWidth, in: bytesWidth, out: bytesWidth, rate: rateWidth, rtt: rttWidth}
	fixed := func() int {
		n := l.container + 1 + 1 + 1 + l.rate // container, separators around the addresses, rate
		for _, c := range []int{l.age, l.in, l.out, l.rtt} {
			if c > 0 {
				n += c + 1
			}
		}
		return n
	}
	if width-fixed() < 2*addrWidth {
		l.age, l.rtt = 0, 0
	}
	if width-fixed() < 2*addrWidth {
		l.in, l.out = 0, 0
	}
	if width-fixed() < 2*addrWidth {
		l.container = min(max(longestContainer, 5), minContainerWidth)
	}
	spare := width - fixed()
	l.source = min(max(spare/2, 8), maxAddrWidth)
	l.destination = min(max(spare-l.source, 8), maxAddrWidth)
	spare -= l.source + l.destination
	if spare > 0 && longestContainer > l.container {
		l.container = min(longestContainer, maxContainerWidth, l.container+spare)
	}
	return l
}

func (l tableLayout) header(sortBy column, desc bool) string {
	title := func(c column) string {
		t := columnTitles[c]
		if c == sortBy {
			if desc {
				return t + "▼"
			}
			return t + "▲"
		}
		return t
	}
	return l.join(title(colContainer), title(colSource), title(colDestination), title(colAge),
		title(colIn), title(colOut), title(colRate), title(colRTT))
}

func (l tableLayout) line(r row, now time.Time) string {
	c := r.conn
	return l.join(c.Container, r.source, r.destination, durationText(now.Sub(c.Since)),
		bytesText(c.BytesIn), bytesText(c.BytesOut), rateText(c.RateIn+c.RateOut), latencyText(c.RTT))
}

func (l tableLayout) join(container, source, destination, age, in, out, rate, rtt string) string {
	var b strings.Builder
	b.WriteString(fit(container, l.container))
	b.WriteString(" ")
	b.WriteString(fit(source, l.source))
	b.WriteString("→")
	b.WriteString(fit(destination, l.destination))
	for _, cell := range []struct {
		text  string
		width int
	}{{age, l.age}, {in, l.in}, {out, l.out}, {rate, l.rate}, {rtt, l.rtt}} {
		if cell.width > 0 {
			b.WriteString(" ")
			b.WriteString(fitRight(cell.text, cell.width))
		}
	}
	return strings.TrimRight(b.String(), " ")
}
