package prebuilt

// The BPF programs of secure mode are compiled with clang by bpf2go into
// secure_bpfel.o, with Go bindings in secure_bpfel.go; both are committed.
// Debian keeps asm/types.h under the multiarch include directory, hence the
// shell and gcc -print-multiarch. Run `make generate` (needs clang,
// llvm-strip and libbpf-dev).

//go:generate sh -c "exec go tool bpf2go -go-package prebuilt -target bpfel -type slim_sk -type slim_addr -type slim_tuple -type slim_rule -type slim_config Secure ../secure/bpf/secure.c -- -O2 -Wall -Werror -I/usr/include/$(gcc -print-multiarch)"
