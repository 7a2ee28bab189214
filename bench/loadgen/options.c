#include "loadgen.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("slim-loadgen: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

static double number_arg(const char *name, const char *text, double min, double max)
{
	char *end;
	errno = 0;
	double v = strtod(text, &end);
	if (errno != 0 || end == text || *end != 0 || !(v >= min && v <= max))
		die("--%s %s: want a number from %g to %g", name, text, min, max);
	return v;
}

static void usage(void)
{
	fputs("usage: slim-loadgen --proto memcached|redis|http --host IPV4 --port N --duration S\n"
	      "       [--rate R] [--conns N] [--warmup S] [--drain S] [--path P] [--keys N]\n"
	      "       [--value-size B] [--set-ratio F]\n",
	      stderr);
	exit(2);
}

void parse_options(int argc, char **argv, struct options *o)
{
	static const struct option long_options[] = {
	    {"proto", required_argument, 0, 'P'},  {"host", required_argument, 0, 'h'},
	    {"port", required_argument, 0, 'p'},   {"conns", required_argument, 0, 'c'},
	    {"rate", required_argument, 0, 'r'},   {"warmup", required_argument, 0, 'w'},
	    {"duration", required_argument, 0, 'd'}, {"drain", required_argument, 0, 'D'},
	    {"path", required_argument, 0, 'u'},   {"keys", required_argument, 0, 'k'},
	    {"value-size", required_argument, 0, 'v'}, {"set-ratio", required_argument, 0, 's'},
	    {0, 0, 0, 0}};
	static char value[PROTO_MAX_VALUE];
	bool have_proto = false;
	*o = (struct options){.conns = 16, .warmup = 1, .drain = 2, .set_ratio = 0.1, .keys = 1000};
	o->work.path = "/";
	o->work.value_len = 32;
	int c;
	while ((c = getopt_long(argc, argv, "", long_options, NULL)) != -1) {
		switch (c) {
		case 'P':
			if (!proto_parse(optarg, &o->work.proto))
				die("--proto %s: want memcached, redis or http", optarg);
			have_proto = true;
			break;
		case 'h': o->host = optarg; break;
		case 'p': o->port = (int)number_arg("port", optarg, 1, 65535); break;
		case 'c': o->conns = (int)number_arg("conns", optarg, 1, MAX_CONNS); break;
		case 'r': o->rate = number_arg("rate", optarg, 0, 1e8); break;
		case 'w': o->warmup = number_arg("warmup", optarg, 0, 3600); break;
		case 'd': o->duration = number_arg("duration", optarg, 0.001, 3600); break;
		case 'D': o->drain = number_arg("drain", optarg, 0, 3600); break;
		case 'u': o->work.path = optarg; break;
		case 'k': o->keys = (unsigned)number_arg("keys", optarg, 1, 1e6); break;
		case 'v': o->work.value_len = (size_t)number_arg("value-size", optarg, 1, PROTO_MAX_VALUE); break;
		case 's': o->set_ratio = number_arg("set-ratio", optarg, 0, 1); break;
		default: usage();
		}
	}
	if (optind != argc || !have_proto || o->host == NULL || o->port == 0 || o->duration == 0)
		usage();
	if (o->work.path[0] != '/')
		die("--path %s: want an absolute path", o->work.path);
	memset(value, 'x', o->work.value_len);
	o->work.value = value;
	o->work.host = o->host;
}
