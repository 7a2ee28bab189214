/*
 * The real libc entry points the shim wraps (resolved with dlsym
 * RTLD_NEXT) and the clock every piece uses.
 */
#include "shim.h"

#include <dlfcn.h>
#include <time.h>

struct slim_real_fns slim_real;

#define RESOLVE(name)                                                         \
	__atomic_store_n(&slim_real.name, (__typeof__(slim_real.name))dlsym(RTLD_NEXT, #name), \
			 __ATOMIC_RELAXED)

void slim_resolve(void)
{
	RESOLVE(socket);
	RESOLVE(bind);
	RESOLVE(connect);
	RESOLVE(listen);
	RESOLVE(accept);
	RESOLVE(accept4);
	RESOLVE(getsockname);
	RESOLVE(getpeername);
	RESOLVE(setsockopt);
	RESOLVE(close);
	RESOLVE(dup);
	RESOLVE(dup2);
	RESOLVE(dup3);
	RESOLVE(fcntl);
	RESOLVE(fcntl64);
	RESOLVE(epoll_ctl);
	RESOLVE(poll);
	RESOLVE(ppoll);
	RESOLVE(select);
	RESOLVE(pselect);
	RESOLVE(close_range);
	RESOLVE(closefrom);
	RESOLVE(ioctl);
	RESOLVE(execve);
	RESOLVE(execvpe);
	RESOLVE(fexecve);
	RESOLVE(posix_spawn);
	RESOLVE(posix_spawnp);
	RESOLVE(sendmsg);
	RESOLVE(sendmmsg);
	RESOLVE(recvmsg);
	RESOLVE(recvmmsg);
	RESOLVE(shutdown);
	RESOLVE(system);
	RESOLVE(popen);
	RESOLVE(chroot);
	/* fcntl64 is an alias of fcntl on x86-64; keep both usable. */
	if (slim_real.fcntl64 == NULL)
		slim_real.fcntl64 = slim_real.fcntl;
}

int64_t slim_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
