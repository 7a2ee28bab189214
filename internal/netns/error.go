package netns

// Error is a failed operation on a named network namespace.
type Error struct {
	Op   string // "create" or "delete"
	Name string
	Err  error
}

func (e *Error) Error() string {
	return e.Op + " network namespace " + e.Name + ": " + e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

func opError(op, name string, err error) error { return &Error{Op: op, Name: name, Err: err} }
