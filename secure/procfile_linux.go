package secure

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// procFileMax is the most ReadProcFile reads: /proc/PID/status, stat and
// cgroup are a few hundred bytes to a few KiB.
const procFileMax = 64 << 10

// ReadProcFile reads a small file of /proc with three system calls (open,
// read until the end, close). os.ReadFile also asks the runtime's poller
// to take the file, which refuses it: five more calls per file, on the
// path of every POOL in secure mode (enrolment check). A file that does
// not exist is an *os.PathError wrapping fs.ErrNotExist, as with os.
func ReadProcFile(path string) ([]byte, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	buf := make([]byte, 0, 4096)
	for {
		if len(buf) == cap(buf) {
			if cap(buf) >= procFileMax {
				return nil, &os.PathError{Op: "read", Path: path, Err: errors.New("longer than expected")}
			}
			grown := make([]byte, len(buf), 2*cap(buf))
			copy(grown, buf)
			buf = grown
		}
		n, err := unix.Read(fd, buf[len(buf):cap(buf)])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			if err == unix.ESRCH { // the process exited between open and read
				err = unix.ENOENT
			}
			return nil, &os.PathError{Op: "read", Path: path, Err: err}
		}
		if n == 0 {
			return buf, nil
		}
		buf = buf[:len(buf)+n]
	}
}
