package glibc

import (
	"fmt"
	"path"
	"sync"

	prebuilt "github.com/slimnet/slim/embed"
)

// ShimNeeds is the oldest glibc the embedded shim loads on.
var ShimNeeds = sync.OnceValues(func() (Version, error) {
	v, ok, err := Needed(prebuilt.Shim())
	if err != nil {
		return Version{}, fmt.Errorf("the embedded shim: %w", err)
	}
	if !ok {
		return Version{}, fmt.Errorf("the embedded shim needs no glibc version: not a glibc shared object")
	}
	return v, nil
})

// Check says why the shim cannot load into programs run by the glibc
// loader at loader (a path in root, such as /lib64/ld-linux-x86-64.so.2),
// ("there is no glibc loader at …"), or returns "" when it can. Versions are compared as the loader compares
// them: the newest GLIBC_ symbol version the library defines (glibc 2.31
// defines up to GLIBC_2.30) against the newest the shim needs. The C library is the
// libc.so.6 beside the loader (after its links), as glibc installs them.
func Check(root Root, loader string) (string, error) {
	need, err := ShimNeeds()
	if err != nil {
		return "", err
	}
	return check(root, loader, need)
}

func check(root Root, loader string, need Version) (string, error) {
	loaderPath, _, err := root.Resolve(loader)
	if IsNotExist(err) {
		return fmt.Sprintf("there is no glibc loader at %s", loader), nil
	}
	if err != nil {
		return "", fmt.Errorf("find the loader %s: %w", loader, err)
	}
	libc := path.Join(path.Dir(loaderPath), "libc.so.6")
	_, libcOnHost, err := root.Resolve(libc)
	if IsNotExist(err) {
		return fmt.Sprintf("there is no libc.so.6 beside the loader %s", loaderPath), nil
	}
	if err != nil {
		return "", fmt.Errorf("find the C library %s: %w", libc, err)
	}
	have, ok, err := Provided(libcOnHost)
	if err != nil {
		return fmt.Sprintf("%s is not a readable ELF library (%v)", libc, err), nil
	}
	if !ok {
		return fmt.Sprintf("%s is not glibc", libc), nil
	}
	if have.Less(need) {
		return fmt.Sprintf("the glibc %s is older than the shim needs (its newest symbol version is GLIBC_%s; the shim needs GLIBC_%s)", libc, have, need), nil
	}
	return "", nil
}
