package bench

import (
	"bytes"
	"sync"
)

// lineWriter hands every complete line written to it, without its
// newline, to a function, as it comes. Lines longer than maxLine are cut.
// Safe for concurrent use.
type lineWriter struct {
	mu      sync.Mutex
	partial []byte
	onLine  func(string)
}

const maxLine = 64 * 1024

func newLineWriter(onLine func(string)) *lineWriter { return &lineWriter{onLine: onLine} }

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			w.partial = append(w.partial, p...)
			if len(w.partial) > maxLine {
				w.emit()
			}
			break
		}
		w.partial = append(w.partial, p[:i]...)
		w.emit()
		p = p[i+1:]
	}
	return n, nil
}

func (w *lineWriter) emit() {
	line := string(bytes.TrimSuffix(w.partial, []byte("\r")))
	w.partial = w.partial[:0]
	w.onLine(line)
}
