// Package ui is slim top's dashboard: a bubbletea model over snapshots of
// the router's control API (package control), and its view. The model
// takes snapshots as messages, so tests drive it without a router or a
// terminal; the view renders from the snapshot's own clock, so the same
// snapshot always renders the same screen.
package ui
