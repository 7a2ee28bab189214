/* Run by TestIntegrationIoctlGuard: ioctls through the 32-bit entry
 * (int $0x80) of a 64-bit x86 program, which a filter that only knew
 * AUDIT_ARCH_X86_64 would let through. fd 3 is a socket of another
 * network namespace. Prints one JSON object. */
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

static long ioctl32(long fd, long cmd, void *arg)
{
	long ret;
	__asm__ volatile("int $0x80"
			 : "=a"(ret)
			 : "a"(54), "b"(fd), "c"(cmd), "d"((long)(unsigned long)arg)
			 : "memory");
	return ret;
}

/* index returns SIOCGIFINDEX of lo, or the negated errno. */
static long index32(int fd, char *ifr)
{
	memset(ifr, 0, 32);
	strcpy(ifr, "lo");
	long ret = ioctl32(fd, SIOCGIFINDEX, ifr);
	return ret < 0 ? ret : *(int *)(ifr + 16);
}

/* conf prints the names SIOCGIFCONF lists (32-byte entries) as a JSON
 * array, or the negated errno. */
static void conf32(int fd, char *mem)
{
	int *ifc = (int *)mem;
	char *buf = mem + 1024;
	ifc[0] = 2048;
	ifc[1] = (int)(long)buf;
	long ret = ioctl32(fd, SIOCGIFCONF, ifc);
	if (ret < 0) {
		printf("%ld", ret);
		return;
	}
	printf("{\"len\": %d, \"names\": [", ifc[0]);
	for (int i = 0; i < ifc[0] / 32; i++)
		printf("%s\"%.16s\"", i ? ", " : "", buf + 32 * i);
	printf("]}");
}

int main(void)
{
	int own = socket(AF_INET, SOCK_DGRAM, 0);
	char *mem = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
	if (own < 0 || mem == MAP_FAILED) {
		perror("compat32");
		return 1;
	}
	printf("{\"own_index\": %ld, \"foreign_index\": %ld, \"own_ifconf\": ", index32(own, mem),
	       index32(3, mem));
	conf32(own, mem);
	printf(", \"foreign_ifconf\": ");
	conf32(3, mem);
	printf("}\n");
	return 0;
}
