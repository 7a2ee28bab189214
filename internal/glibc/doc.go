// Package glibc tells whether the shim can load into a program: which
// glibc versions the shim needs (its ELF version needs), which version a
// program's C library provides (the versions libc.so.6 defines), and where
// that library is, also inside a container's root file system.
package glibc
