/*
 * Configuration from the environment, read once by the constructor:
 * SLIM_ROUTER_SOCK (the router's socket; unset: the shim is inert),
 * SLIM_ROUTER_TIMEOUT_MS and SLIM_DEBUG. The directory table is the file
 * "directory" beside the router's socket.
 */
#include "shim.h"

#include <stdlib.h>
#include <string.h>

struct slim_config slim_cfg;

static int env_int(const char *name, int def, int lo, int hi)
{
	const char *s = getenv(name);
	if (s == NULL || *s == '\0')
		return def;
	long v = 0;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return def;
		v = v * 10 + (*s - '0');
		if (v > hi)
			return hi;
	}
	return v < lo ? lo : (int)v;
}

void slim_config_debug(void)
{
	const char *debug = getenv("SLIM_DEBUG");
	slim_cfg.debug = debug != NULL && strcmp(debug, "1") == 0;
}

bool slim_configure(void)
{
	const char *sock = getenv("SLIM_ROUTER_SOCK");
	if (sock == NULL || *sock == '\0')
		return false;
	size_t n = strlen(sock);
	if (n >= sizeof slim_cfg.router_path) {
		slim_log("slim: SLIM_ROUTER_SOCK is too long for a unix socket path; using the overlay");
		return false;
	}
	memcpy(slim_cfg.router_path, sock, n + 1);

	/* DIR/directory, DIR = dirname of the socket path. */
	const char *slash = strrchr(sock, '/');
	size_t dlen = slash == NULL ? 0 : (size_t)(slash - sock);
	static const char name[] = "directory";
	if (slash == NULL) {
		memcpy(slim_cfg.dir_path, name, sizeof name);
	} else {
		if (dlen == 0)
			dlen = 1; /* "/router.sock" → "/directory" */
		memcpy(slim_cfg.dir_path, sock, dlen);
		if (slim_cfg.dir_path[dlen - 1] != '/')
			slim_cfg.dir_path[dlen++] = '/';
		memcpy(slim_cfg.dir_path + dlen, name, sizeof name);
	}
	slim_cfg.timeout_ms = env_int("SLIM_ROUTER_TIMEOUT_MS", 500, 1, 600000);
	return true;
}
