package ioctlguard

import "github.com/slimnet/slim/internal/seccompnotif"

// The guard's names for the kernel interface it shares with the socket
// supervisor (package seccompnotif).
type (
	seccompData = seccompnotif.Data
	notif       = seccompnotif.Notif
	notifResp   = seccompnotif.Resp
)

func recv(listener int) (notif, error)     { return seccompnotif.Recv(listener) }
func send(listener int, r notifResp) error { return seccompnotif.Send(listener, r) }
func idValid(listener int, id uint64) bool { return seccompnotif.IDValid(listener, id) }
