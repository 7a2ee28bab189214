/*
 * libslim: the shim slim preloads into container processes (LD_PRELOAD).
 *
 * This file: the constructor and fork handling, and the wiring between
 * the pieces (the fd table's events go to the router client). See shim.h
 * for the map of the other files and docs/datapath.md for the design.
 *
 * The shim is inert (every wrapper is a straight call to libc, behind one
 * pointer test) when SLIM_ROUTER_SOCK is unset or unusable.
 */
#include "shim.h"

#include <pthread.h>
#include <unistd.h>

/* Read by slim and by tests to tell which shim a process loaded. */
SLIM_EXPORT const char *slim_shim_version = "slim-shim 1 (connect/accept acceleration, protocol v1)";

/* ---- fork --------------------------------------------------------------- */

/*
 * The child drops what it cannot share with its parent: the pool (a pool
 * socket must be used by one process) and the router connections (replies
 * would interleave). No allocation here; only close(2) and stores.
 */
static void atfork_child(void)
{
	slim_table_atfork_child();
	slim_pool_atfork_child();
	slim_router_atfork_child();
	slim_stats_atfork_child();
}

/* ---- the fd table's events ------------------------------------------------ */

static void hidden_moved(int hkind, int slot, int oldfd, int newfd)
{
	if (hkind == SLIM_H_ROUTER)
		slim_router_moved(slot, oldfd, newfd);
	else if (hkind == SLIM_H_POOL)
		slim_pool_moved(oldfd, newfd);
}

static const struct slim_fd_events fd_events = {
	.unlisten = slim_unlisten,
	.hidden_moved = hidden_moved,
};

/* ---- constructor -------------------------------------------------------- */

__attribute__((constructor)) static void slim_shim_init(void)
{
	int saved = errno;
	slim_resolve();
	slim_config_debug();
	if (slim_cfg.debug)
		slim_log("slim: shim loaded (pid %d)", (int)getpid());

	slim_fd_events_set(&fd_events);
	bool active = slim_configure() && slim_router_init() == 0 &&
		      pthread_atfork(NULL, NULL, atfork_child) == 0 && slim_table_init() == 0;
	if (active) {
		slim_debug("slim: router %s, directory %s, hidden fds from %d",
			   slim_cfg.router_path, slim_cfg.dir_path, slim_hidden_base);
		slim_keepenv_init();
	}
	slim_exec_restore(active);
	errno = saved;
}
