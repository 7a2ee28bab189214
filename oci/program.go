package oci

import (
	"bytes"
	"debug/elf"
	"fmt"
	"io"
	"os"
	"path"
	"runtime"
	"strings"

	"github.com/slimnet/slim/internal/glibc"
)

// defaultLoader is glibc's loader for the shim's architecture, the one
// the image's dynamic programs would use.
func defaultLoader() string {
	if runtime.GOARCH == "arm64" {
		return "/lib/ld-linux-aarch64.so.1"
	}
	return "/lib64/ld-linux-x86-64.so.2"
}

// programLoader finds the program a process starts (args[0], looked up in
// the process's PATH inside root) and returns the loader that will run it:
// its PT_INTERP, its script interpreter's, or glibc's default loader for
// a static program (which ignores the preload; what it starts may not).
// reason says why the shim cannot apply (a loader that is not glibc's).
func programLoader(root glibc.Root, args, env []string) (loader, reason string, err error) {
	if len(args) == 0 {
		return "", "the process has no arguments", nil
	}
	name := args[0]
	for hops := 0; hops < 4; hops++ {
		host, found, err := lookPath(root, name, env)
		if err != nil {
			return "", "", err
		}
		if !found {
			return "", fmt.Sprintf("its program %s is not in the image", name), nil
		}
		interp, script, err := readInterpreter(host)
		if err != nil {
			return "", "", fmt.Errorf("read %s: %w", name, err)
		}
		switch {
		case script != "":
			name = script
			continue
		case interp == "":
			return defaultLoader(), "", nil
		case !strings.Contains(path.Base(interp), "ld-linux"):
			return "", fmt.Sprintf("its program %s does not use the glibc loader (its loader is %s)", name, interp), nil
		}
		return interp, "", nil
	}
	return "", fmt.Sprintf("its program %s is a chain of scripts", args[0]), nil
}

// lookPath resolves name as execve in the container would: a path with a
// slash as it is, else each directory of PATH.
func lookPath(root glibc.Root, name string, env []string) (string, bool, error) {
	candidates := []string{name}
	if !strings.Contains(name, "/") {
		dirs, ok := getenv(env, "PATH")
		if !ok {
			dirs = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
		}
		candidates = candidates[:0]
		for _, dir := range strings.Split(dirs, ":") {
			if path.IsAbs(dir) {
				candidates = append(candidates, path.Join(dir, name))
			}
		}
	}
	for _, c := range candidates {
		_, host, err := root.Resolve(c)
		if glibc.IsNotExist(err) {
			continue
		}
		if err != nil {
			return "", false, err
		}
		if info, err := os.Stat(host); err == nil && info.Mode().IsRegular() {
			return host, true, nil
		}
	}
	return "", false, nil
}

// readInterpreter returns an ELF program's PT_INTERP ("" for a static
// one), or a script's interpreter.
func readInterpreter(host string) (interp, script string, err error) {
	f, err := os.Open(host)
	if err != nil {
		return "", "", err
	}
	defer f.Close()
	head := make([]byte, 256)
	n, _ := io.ReadFull(f, head)
	head = head[:n]
	if bytes.HasPrefix(head, []byte("#!")) {
		line, _, _ := bytes.Cut(head[2:], []byte("\n"))
		fields := strings.Fields(string(line))
		if len(fields) == 0 {
			return "", "", fmt.Errorf("a script without an interpreter")
		}
		return "", fields[0], nil
	}
	bin, err := elf.NewFile(f)
	if err != nil {
		return "", "", fmt.Errorf("neither ELF nor a script: %w", err)
	}
	defer bin.Close()
	for _, p := range bin.Progs {
		if p.Type == elf.PT_INTERP {
			data, err := io.ReadAll(p.Open())
			if err != nil {
				return "", "", err
			}
			return string(bytes.TrimRight(data, "\x00")), "", nil
		}
	}
	return "", "", nil
}
