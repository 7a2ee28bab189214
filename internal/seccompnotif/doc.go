// Package seccompnotif is the kernel interface of seccomp user
// notification that the ioctl guard and the socket supervisor share:
// receiving a trapped system call, answering it, checking that its caller
// still waits, and installing a file in the caller (ADDFD).
package seccompnotif
