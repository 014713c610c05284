package ebpf

// The BPF object is compiled by clang into restrack_bpfel.o and embedded by
// restrack_bpfel.go, both committed so that building restrack needs no clang.
// `make generate` reruns these where clang exists; generate_test.go fails
// when the C sources changed without regenerating (bpf/source.sha256).
//
//go:generate go run github.com/cilium/ebpf/cmd/bpf2go@v0.22.0 -cc clang -target bpfel -tags linux -cflags "-O2 -g -Wall -Werror -Ibpf/include" restrack bpf/restrack.bpf.c
//go:generate sh -c "sha256sum bpf/restrack.bpf.c bpf/event.h bpf/include/asm/*.h > bpf/source.sha256"
