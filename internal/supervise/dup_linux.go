package supervise

import (
	"sync"
)

// maxShared bounds the sockets remembered as duplicated.
const maxShared = 4096

// sharedSockets are the not yet connected TCP sockets the program
// duplicated (dup, dup2, dup3, fcntl F_DUPFD): a connect on one number
// cannot swap the socket under the others, so such a socket stays on the
// overlay, as under the shim.
type sharedSockets struct {
	mu      sync.Mutex
	cookies map[uint64]bool
}

func (s *sharedSockets) add(cookie uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cookies == nil || len(s.cookies) >= maxShared {
		s.cookies = map[uint64]bool{}
	}
	s.cookies[cookie] = true
}

func (s *sharedSockets) has(cookie uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cookies[cookie]
}

// dup notes a duplicated candidate socket, then lets the kernel duplicate
// it (the decision reads no pointer).
func (s *Supervisor) dup(r *request) {
	defer r.proceed()
	sock, err := r.file(r.fdArg(0))
	if err != nil {
		return
	}
	if info, err := inspect(sock); err == nil && s.candidate(info) {
		s.shared.add(info.cookie)
	}
}

// candidate says whether a socket could get a host socket at connect: a
// TCP socket (AF_INET or AF_INET6) of the container, not connected nor
// listening.
func (s *Supervisor) candidate(info sockInfo) bool {
	return info.tcp && info.netns == s.netns && info.state == tcpClose
}
