package embed

// The BPF programs of secure mode are compiled with clang by bpf2go into
// connect4_bpfel.o, with Go bindings in connect4_bpfel.go; both are
// committed. Debian keeps asm/types.h under the multiarch include directory,
// hence the shell and gcc -print-multiarch. Run `make generate` (needs clang,
// llvm-strip and libbpf-dev).

//go:generate sh -c "exec go tool bpf2go -go-package embed -target bpfel Connect4 ../secure/bpf/connect4.c -- -Wall -Werror -I/usr/include/$(gcc -print-multiarch)"
