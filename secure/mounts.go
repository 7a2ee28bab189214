package secure

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// ErrNotMounted is returned (wrapped) when no file system of the wanted type
// is mounted.
var ErrNotMounted = errors.New("not mounted")

// findMount returns the mount point of the first file system of type fstype
// in mounts, which is text in the format of /proc/mounts (fstab(5)).
func findMount(mounts io.Reader, fstype string) (string, error) {
	scanner := bufio.NewScanner(mounts)
	for scanner.Scan() {
		fields := strings.Fields(scanner.Text())
		if len(fields) < 3 || fields[2] != fstype {
			continue
		}
		return unescapeMountField(fields[1]), nil
	}
	if err := scanner.Err(); err != nil {
		return "", fmt.Errorf("read mount table: %w", err)
	}
	return "", fmt.Errorf("no %s file system in the mount table: %w", fstype, ErrNotMounted)
}

// unescapeMountField decodes the octal escapes (\040 for a space, \011,
// \012, \134) that the kernel writes for special characters in mount
// points.
func unescapeMountField(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
