// Package launch is what `slim exec` does between its flags and the
// program: it inspects the program's ELF (static, setuid, file
// capabilities, another loader, another architecture), installs the
// embedded shim and plans the environment (LD_PRELOAD, SLIM_ROUTER_SOCK),
// asks the router whether it runs in secure mode, puts the program under
// the ioctl guard and enrols it with a secure router, and finally execs
// the program in place of slim. Package main keeps only the flags.
package launch
