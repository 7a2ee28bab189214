package lab

import "fmt"

// Check verifies that every namespace the lab's state names still exists.
func (l *Lab) Check() error {
	for _, n := range l.Nodes() {
		if _, err := namespaceID(n.Netns); err != nil {
			return fmt.Errorf("lab %s is damaged: %w (run slim lab down --name %s)", l.Name, err, l.Name)
		}
	}
	return nil
}

// Leftovers lists the namespaces that carry the lab's name, whether or not
// the lab is up.
func Leftovers(name string) ([]string, error) { return namespacesWithPrefix(name + "-") }
