package lab

import "fmt"

// SetWire plugs a host into the wire or pulls it out, by setting the
// wire's end of the host's link up or down (in the lab's wire namespace).
// Pulled out, the host's packets to other hosts are dropped without an
// error, as a cut cable or a blackholing switch would: for tests of what
// routers see when a peer goes silent.
func (l *Lab) SetWire(host string, plugged bool) error {
	if _, err := l.Node(host); err != nil {
		return err
	}
	handle, err := handleFor(wireNamespace(l.Name))
	if err != nil {
		return err
	}
	defer handle.Close()
	link, err := handle.LinkByName(host)
	if err != nil {
		return fmt.Errorf("wire link of %s: %w", host, err)
	}
	if plugged {
		err = handle.LinkSetUp(link)
	} else {
		err = handle.LinkSetDown(link)
	}
	if err != nil {
		return fmt.Errorf("setting the wire link of %s %s: %w", host, map[bool]string{true: "up", false: "down"}[plugged], err)
	}
	return nil
}
