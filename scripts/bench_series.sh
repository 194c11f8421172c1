#!/bin/sh
# One series of cnn bench runs, as in the README's benchmark table: each run's JSON
# (medians per task, the measured FMA peak) goes to DIR/NAME.json.
# Usage: scripts/bench_series.sh DIR
set -e
dir=${1:?usage: scripts/bench_series.sh DIR}
mkdir -p "$dir"
go build -o "$dir/cnn" ./cmd/cnn
run() {
	name=$1
	shift
	"$dir/cnn" bench -json "$@" >"$dir/$name.json"
	printf '%-20s %s\n' "$name" "$(grep -m1 median_ms "$dir/$name.json")"
}
run alexnet_b1_exact -model alexnet -batch 1 -reps 21
run alexnet_b1_fast -model alexnet -batch 1 -reps 21 -mode fast
run alexnet_b8_exact -model alexnet -batch 8 -reps 11
run alexnet_b8_fast -model alexnet -batch 8 -reps 11 -mode fast
run vgg16_b1_exact -model vgg16 -batch 1 -reps 11 -roofline "$dir/roofline_vgg16_b1_exact.png"
run vgg16_b1_exact_t1 -model vgg16 -batch 1 -reps 5 -threads 1
run vgg16_b1_fast -model vgg16 -batch 1 -reps 11 -mode fast -roofline "$dir/roofline_vgg16_b1_fast.png"
run vgg16_b8_exact -model vgg16 -batch 8 -reps 5
run vgg16_b8_fast -model vgg16 -batch 8 -reps 5 -mode fast
run alexnet_b8_train -model alexnet -batch 8 -reps 7 -train
run vgg16bn_b4_train -model vgg16_bn -batch 4 -reps 5 -train
