/*
 * Old-glibc compatibility: the shim must load into programs of any glibc
 * from 2.17 (images of RHEL 7, Amazon Linux 2, Debian 11, Ubuntu 20.04),
 * not only the glibc it was built with. Built against a new glibc, a few
 * calls would bind to symbol versions that old ones lack, and ld.so would
 * refuse the shim, so the program would not start at all:
 *
 *   dlsym, dladdr          GLIBC_2.34 (libdl.so.2 before 2.34)
 *   pthread_key_create,    GLIBC_2.34 (libpthread.so.0 before 2.34)
 *   pthread_setspecific
 *   stat, fstat            GLIBC_2.33 (before 2.33 only __xstat and
 *                          __fxstat exist, with another calling convention)
 *
 * The first four bind here to their oldest version, which every glibc
 * since has kept; the Makefile links libdl.so.2 and libpthread.so.0 (stub
 * libraries since 2.34), where glibc before 2.34 defines them. stat and
 * fstat become the system calls themselves: on x86_64 and aarch64 the
 * kernel's struct stat is glibc's.
 *
 * `objdump -T embed/libslim.so | grep GLIBC_` must show nothing newer than
 * 2.17; internal/glibc's TestShimLoadsOnGlibc217 checks it.
 *
 * Included by shim.h only, before any use of these functions.
 */
#ifndef SLIM_COMPAT_H
#define SLIM_COMPAT_H

#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#if defined(__x86_64__)
#define SLIM_GLIBC_BASE "GLIBC_2.2.5"
#elif defined(__aarch64__)
#define SLIM_GLIBC_BASE "GLIBC_2.17"
#else
#error "the shim's old-glibc symbol versions are known for x86_64 and aarch64 only"
#endif

__asm__(".symver dlsym, dlsym@" SLIM_GLIBC_BASE);
__asm__(".symver dladdr, dladdr@" SLIM_GLIBC_BASE);
__asm__(".symver pthread_key_create, pthread_key_create@" SLIM_GLIBC_BASE);
__asm__(".symver pthread_setspecific, pthread_setspecific@" SLIM_GLIBC_BASE);

static inline int slim_compat_stat(const char *path, struct stat *st)
{
	return (int)syscall(SYS_newfstatat, AT_FDCWD, path, st, 0);
}

static inline int slim_compat_fstat(int fd, struct stat *st)
{
	return (int)syscall(SYS_fstat, fd, st);
}

/* memfd_create(2) got its glibc wrapper in 2.27. */
static inline int slim_compat_memfd_create(const char *name, unsigned int flags)
{
	return (int)syscall(SYS_memfd_create, name, flags);
}
#define memfd_create(name, flags) slim_compat_memfd_create(name, flags)

/* Function-like: `struct stat` is left alone. */
#define stat(path, st) slim_compat_stat(path, st)
#define fstat(fd, st) slim_compat_fstat(fd, st)

#endif
