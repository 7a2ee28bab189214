package ioctlguard

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// assembler builds a classic BPF program whose conditional jumps go
// forward to named labels.
type assembler struct {
	ins     []unix.SockFilter
	targets map[int]string // instruction index → label its jt goes to
	labels  map[string]int // label → instruction index
}

// load loads the 32-bit word at offset off of struct seccomp_data.
func (a *assembler) load(off uint32) {
	a.emit(unix.SockFilter{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: off})
}

// and masks the accumulator with k.
func (a *assembler) and(k uint32) {
	a.emit(unix.SockFilter{Code: unix.BPF_ALU | unix.BPF_AND | unix.BPF_K, K: k})
}

// jumpIfEqual goes to label when the accumulator equals k, else on.
func (a *assembler) jumpIfEqual(k uint32, label string) {
	if a.targets == nil {
		a.targets = map[int]string{}
	}
	a.targets[len(a.ins)] = label
	a.emit(unix.SockFilter{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, K: k})
}

// ret returns the seccomp action k.
func (a *assembler) ret(k uint32) {
	a.emit(unix.SockFilter{Code: unix.BPF_RET | unix.BPF_K, K: k})
}

// label names the next instruction.
func (a *assembler) label(name string) {
	if a.labels == nil {
		a.labels = map[string]int{}
	}
	a.labels[name] = len(a.ins)
}

func (a *assembler) emit(ins unix.SockFilter) { a.ins = append(a.ins, ins) }

// assemble resolves the jumps. A missing label or a backward or too long
// jump is a bug in the program, hence the panic.
func (a *assembler) assemble() []unix.SockFilter {
	for i, name := range a.targets {
		to, ok := a.labels[name]
		offset := to - i - 1
		if !ok || offset < 0 || offset > 255 {
			panic(fmt.Sprintf("ioctlguard: bad jump from %d to %q", i, name))
		}
		a.ins[i].Jt = uint8(offset)
	}
	return a.ins
}
