package ui

import (
	"cmp"
	"slices"
	"strings"

	"github.com/slimnet/slim/control"
)

// column is a column of the connection table.
type column int

const (
	colContainer column = iota
	colSource
	colDestination
	colAge
	colIn
	colOut
	colRate
	colRTT
	numColumns
)

var columnTitles = [numColumns]string{"CONTAINER", "SOURCE", "DESTINATION", "AGE", "IN", "OUT", "RATE", "RTT"}

func (c column) String() string { return strings.ToLower(columnTitles[c]) }

// row is one connection as the table shows it.
type row struct {
	conn        control.Connection
	source      string // overlay source → destination, client to server
	destination string
	hostOnly    bool // source is the client's host address: its overlay address is not known here
}

func rowOf(c control.Connection) row {
	r := row{conn: c}
	peer := c.Peer.String()
	if !c.PeerKnown() {
		peer, r.hostOnly = c.PeerHost.String()+"*", true
	}
	if c.Role == control.RoleServer {
		r.source, r.destination = peer, c.Local.String()
	} else {
		r.source, r.destination = c.Local.String(), peer
	}
	return r
}

// rowsOf filters connections by container (substring; empty: all) and
// sorts them by a column.
func rowsOf(conns []control.Connection, filter string, by column, descending bool) []row {
	rows := make([]row, 0, len(conns))
	for _, c := range conns {
		if filter == "" || strings.Contains(c.Container, filter) {
			rows = append(rows, rowOf(c))
		}
	}
	slices.SortStableFunc(rows, func(a, b row) int {
		d := compareBy(a, b, by)
		if d == 0 {
			d = cmp.Compare(a.conn.Cookie, b.conn.Cookie)
			if descending {
				d = -d // keep ties in a stable order either way
			}
		}
		if descending {
			return -d
		}
		return d
	})
	return rows
}

func compareBy(a, b row, by column) int {
	switch by {
	case colContainer:
		return cmp.Compare(a.conn.Container, b.conn.Container)
	case colSource:
		return cmp.Compare(a.source, b.source)
	case colDestination:
		return cmp.Compare(a.destination, b.destination)
	case colAge: // younger first when ascending
		return b.conn.Since.Compare(a.conn.Since)
	case colIn:
		return cmp.Compare(a.conn.BytesIn, b.conn.BytesIn)
	case colOut:
		return cmp.Compare(a.conn.BytesOut, b.conn.BytesOut)
	case colRate:
		return cmp.Compare(a.conn.RateIn+a.conn.RateOut, b.conn.RateIn+b.conn.RateOut)
	case colRTT:
		return cmp.Compare(a.conn.RTT, b.conn.RTT)
	}
	return 0
}
