package main

import (
	"fmt"
	"io"
	"time"

	"github.com/slimnet/slim/control"
)

// writeStoreHealth prints the cluster store's lines of slim status.
func writeStoreHealth(w io.Writer, now time.Time, h control.StoreHealth) {
	state := "connected"
	if !h.Connected {
		state = "DISCONNECTED"
	}
	fmt.Fprintf(w, "store    %s %s since %s, revision %d, %d members, %d listeners; last write %s, watch %s, lease renewal %s",
		h.Backend, state, agoText(now, h.Since), h.Revision, h.Members, h.Listeners,
		agoText(now, h.LastWrite), agoText(now, h.LastWatch), agoText(now, h.LastRenewal))
	if h.Resyncs > 0 {
		fmt.Fprintf(w, ", %d resyncs", h.Resyncs)
	}
	fmt.Fprintln(w)
	if !h.Joined {
		fmt.Fprintf(w, "         NOT JOINED: serving the cluster state saved at the last run, joining in the background\n")
	}
	if h.Unpublished {
		fmt.Fprintf(w, "         this host's listeners are not published yet: %d lists waiting since %s (retrying)\n", h.Pending, agoText(now, h.PendingSince))
	}
	if h.LastError != "" {
		fmt.Fprintf(w, "         last error %s: %s\n", agoText(now, h.ErrorAt), h.LastError)
	}
}

// agoText says how long before now t was: "3s ago", or "never".
func agoText(now, t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return now.Sub(t).Round(time.Second).String() + " ago"
}
