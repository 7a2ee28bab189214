package cluster

import "sync"

// View holds a store's latest State and wakes those waiting for the next.
type View struct {
	mu      sync.Mutex
	state   *State
	changed chan struct{}
}

// NewView starts a view at state.
func NewView(state *State) *View {
	return &View{state: state, changed: make(chan struct{})}
}

// Current is the latest state and a channel closed when it is replaced.
func (v *View) Current() (*State, <-chan struct{}) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.state, v.changed
}

// Set replaces the state and wakes the waiters.
func (v *View) Set(state *State) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.state = state
	close(v.changed)
	v.changed = make(chan struct{})
}

// Update applies edit to the latest state under the view's lock and
// publishes the result; it returns the builder's problems.
func (v *View) Update(edit func(*Builder)) []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	b := v.state.Edit()
	edit(b)
	v.state = b.Done()
	close(v.changed)
	v.changed = make(chan struct{})
	return b.Problems()
}
