#!/bin/sh
# Exact mode promises the same bits from every build, but the Go compiler may fuse
# x*y + z into one FMA where the target has it (GOAMD64=v3 and up, arm64, ...),
# which rounds once instead of twice. Go code on the numeric path therefore writes
# float64(x*y) + z (an explicit conversion forbids the fusion) and leaves FMAs to
# the kernels, which do them on purpose. This builds that code for GOAMD64=v3 and
# fails if the compiler emitted a fused multiply-add anywhere in it; likewise for
# arm64, where Go fuses by default.
# Allowed: roofline.go only draws plots; InitTorch and modeltest scale uniform
# random numbers by powers of two (math/rand/v2's Float64 is u·2⁻⁵³, and 2r - 1),
# where a fused and an unfused result are the same exact value.
set -e
# -S prints only what the compiler runs: a fresh cache makes it compile everything.
cache=$(mktemp -d)
trap 'rm -rf "$cache"' EXIT
fused() { # env, instruction pattern
	env GOCACHE="$cache" "$1" ${GO:-go} build -gcflags=-S ./runtime/... ./generated/... ./cmd/... 2>&1 |
		grep -E "$2" | grep -oE '\([^)]*\.go:[0-9]+\)' |
		grep -vE '/(cmd/cnn/roofline|runtime/init|generated/modeltest/modeltest)\.go:' || true
}
out=$({
	fused GOAMD64=v3 '\sVF(N)?M(ADD|SUB)[0-9]+S[SD]\s'
	fused GOARCH=arm64 '\sF(N)?M(ADD|SUB)[SD]\s'
} | sort -u)
if [ -n "$out" ]; then
	echo "fused multiply-adds in Go code (write float64(x*y) + z):"
	echo "$out"
	exit 1
fi
echo "no fused multiply-adds in Go code"
