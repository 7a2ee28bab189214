/*
 * The shim's variables across an exec whose environment lost them.
 *
 * Daemons start their children with an environment of their own: Postfix
 * keeps only import_environment (and its postfix command cleans the
 * environment before the master starts), Dovecot's master likewise, and
 * `env -i` keeps nothing. LD_PRELOAD and SLIM_ROUTER_SOCK went with the
 * rest, so the child ran without the shim: unaccelerated, and, worse, a
 * child that inherited an armed listener (its host listener is inherited
 * with it, and SLIM_FDS describes the pair) accepted only from its own
 * listener while accelerated clients waited unanswered in the host
 * listener's queue (Dovecot's imap-login: every IMAP client hung).
 *
 * So an active shim puts its variables back into a new image's environment
 * that has no SLIM_ROUTER_SOCK at all: SLIM_ROUTER_SOCK, the shim's path in
 * front of LD_PRELOAD (other preloads there stay), and SLIM_DEBUG and
 * SLIM_ROUTER_TIMEOUT_MS as this image had them. An environment that has
 * SLIM_ROUTER_SOCK was handed on, not rebuilt, and is left as it is: a
 * program that sets SLIM_ROUTER_SOCK to the empty string starts its child
 * without Slim on purpose.
 *
 * The values are copied once by the constructor (before any thread), read
 * only afterwards. slim_keepenv_plan runs in execve, which may be in a
 * vfork child or a signal handler: no malloc, no lock, stack only.
 */
#include "shim.h"

#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

#define SOCK_VAR "SLIM_ROUTER_SOCK="
#define PRELOAD_VAR "LD_PRELOAD="
#define TIMEOUT_VAR "SLIM_ROUTER_TIMEOUT_MS="

static char keep_sock[sizeof SOCK_VAR + sizeof slim_cfg.router_path];
static char keep_preload[sizeof PRELOAD_VAR + SLIM_KEEP_PATH_MAX];
static char keep_timeout[sizeof TIMEOUT_VAR + 16];
static char keep_debug[] = "SLIM_DEBUG=1";
static size_t shim_path_len; /* of the path in keep_preload */

/* Copies NAME=value into dst (size n); false if it does not fit. */
static bool set_entry(char *dst, size_t n, const char *name, const char *value)
{
	size_t a = strlen(name), b = strlen(value);
	if (a + b + 1 > n)
		return false;
	memcpy(dst, name, a);
	memcpy(dst + a, value, b + 1);
	return true;
}

void slim_keepenv_init(void)
{
	Dl_info info;
	if (dladdr((void *)slim_keepenv_init, &info) == 0 || info.dli_fname == NULL ||
	    info.dli_fname[0] != '/' ||
	    !set_entry(keep_preload, sizeof keep_preload, PRELOAD_VAR, info.dli_fname)) {
		slim_debug("slim: the shim's own path is unknown: children whose environment is rebuilt run without it");
		return;
	}
	shim_path_len = strlen(info.dli_fname);
	set_entry(keep_sock, sizeof keep_sock, SOCK_VAR, slim_cfg.router_path);
	const char *t = getenv("SLIM_ROUTER_TIMEOUT_MS");
	if (t != NULL && !set_entry(keep_timeout, sizeof keep_timeout, TIMEOUT_VAR, t))
		keep_timeout[0] = '\0';
}

/* The entry of envp named by prefix ("NAME="), or NULL. */
static char *find(char *const envp[], const char *prefix)
{
	size_t n = strlen(prefix);
	for (size_t i = 0; envp != NULL && envp[i] != NULL; i++)
		if (strncmp(envp[i], prefix, n) == 0)
			return envp[i];
	return NULL;
}

/* Whether the list of paths (LD_PRELOAD's: spaces or colons) names the shim. */
static bool names_shim(const char *list)
{
	const char *shim = keep_preload + sizeof PRELOAD_VAR - 1;
	for (const char *p = list; (p = strstr(p, shim)) != NULL; p++) {
		char before = p == list ? ' ' : p[-1], after = p[shim_path_len];
		if ((before == ' ' || before == ':') && (after == '\0' || after == ' ' || after == ':'))
			return true;
	}
	return false;
}

/* LD_PRELOAD for the new image: the shim's path, then what old listed. */
static void plan_preload(struct slim_keep *k, char *old)
{
	if (old == NULL) {
		k->add[k->n++] = keep_preload;
		return;
	}
	const char *list = old + sizeof PRELOAD_VAR - 1;
	if (names_shim(list))
		return;
	if (*list == '\0') {
		k->add[k->n++] = keep_preload;
		k->drop = old;
		return;
	}
	size_t a = strlen(keep_preload), b = strlen(list);
	if (a + 1 + b + 1 > sizeof k->preload)
		return; /* too long to combine: the child goes without the shim */
	memcpy(k->preload, keep_preload, a);
	k->preload[a] = ' ';
	memcpy(k->preload + a + 1, list, b + 1);
	k->add[k->n++] = k->preload;
	k->drop = old;
}

bool slim_keepenv_plan(struct slim_keep *k, char *const envp[])
{
	k->n = 0;
	k->drop = NULL;
	if (keep_preload[0] == '\0' || find(envp, SOCK_VAR) != NULL)
		return false;
	k->add[k->n++] = keep_sock;
	plan_preload(k, find(envp, PRELOAD_VAR));
	if (slim_cfg.debug && find(envp, "SLIM_DEBUG=") == NULL)
		k->add[k->n++] = keep_debug;
	if (keep_timeout[0] != '\0' && find(envp, TIMEOUT_VAR) == NULL)
		k->add[k->n++] = keep_timeout;
	return true;
}
