/*
 * chroot: daemons confine the processes that talk to the network (Debian's
 * master.cf chroots Postfix's smtpd and smtp to the queue directory,
 * Dovecot chroots imap-login). The router's socket and the directory file
 * are paths outside the new root: a chrooted process could ask the router
 * for nothing, so its connects took the overlay (Postfix's smtp delivering
 * to another host), with a warning its daemon usually discards.
 *
 * So before the root changes, the shim of an active process readies what
 * it will need: the calling thread's router connection (a HELLO round
 * trip; the thread keeps the connection for its later requests: POOL,
 * LISTEN, PUBLISH, TABLE) and the directory's mapping, which is kept from
 * then on (directory.c). What is left out: other threads, which have no
 * router connection and cannot make one, a child forked after the chroot
 * (a fork drops the router connections), and a connection the router
 * closes (a restart): their requests fail, and their connects take the
 * overlay with the shim's one warning.
 */
#include "shim.h"

SLIM_EXPORT int chroot(const char *path)
{
	bool active = atomic_load_explicit(&slim_table, memory_order_acquire) != NULL;
	if (active) {
		int saved = errno;
		struct slim_self self;
		slim_router_sync(slim_cfg.timeout_ms);
		slim_hello(&self);
		slim_dir_before_chroot();
		errno = saved;
	}
	int r = REAL(chroot)(path);
	if (r == 0 && active)
		slim_dir_after_chroot();
	return r;
}
