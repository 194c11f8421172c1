#!/usr/bin/python3
"""PyTorch's times for the tasks of scripts/bench_series.sh, on this machine.

The competitor figures of ../shared/REFERENCE.md were measured on another
machine kind; this measures PyTorch (Debian's python3-torch and
python3-torchvision) on the machine the Go benchmarks run on, with the same
tasks, batch sizes and thread count, so README can quote ratios measured in
one sitting. Nothing in the Go build or tests depends on it.

    /usr/bin/python3 scripts/bench_torch.py [-threads 2] [-only alexnet_b1,...] [-modes nchw,...] > torch.json

Each task and mode (MODES below) prints one JSON object per line: median, min and max milliseconds
over its repetitions after warm-up runs, and the peak resident memory of a
fresh process for the batch-1 inference tasks (each task runs in its own
process, so the figure is that model's alone).
"""

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

# name: (model, batch, reps, train)
TASKS = {
    "alexnet_b1": ("alexnet", 1, 21, False),
    "alexnet_b8": ("alexnet", 8, 11, False),
    "vgg16_b1": ("vgg16", 1, 11, False),
    "vgg16_b8": ("vgg16", 8, 5, False),
    "alexnet_b8_train": ("alexnet", 8, 7, True),
    "vgg16bn_b4_train": ("vgg16_bn", 4, 5, True),
}


# How PyTorch runs a task: its default (NCHW tensors), channels_last (NHWC
# tensors and weights, which oneDNN's direct convolutions want: one 3×3
# 256→256 conv at 56² on one thread ran 77 GFLOP/s NCHW and 206 NHWC here),
# and, for inference, TorchScript frozen by torch.jit.optimize_for_inference
# (oneDNN's blocked layouts, conv+ReLU fused).
MODES = ("nchw", "channels_last", "jit")


def run_task(name, mode, threads):
    import torch
    import torchvision

    arch, batch, reps, train = TASKS[name]
    torch.manual_seed(1)
    torch.set_num_threads(threads)
    model = getattr(torchvision.models, arch)()  # random weights: no download
    x = torch.randn(batch, 3, 224, 224)
    if mode == "channels_last":
        model = model.to(memory_format=torch.channels_last)
        x = x.to(memory_format=torch.channels_last)
    times = []
    if train:
        model.train()
        opt = torch.optim.SGD(model.parameters(), lr=0.001, momentum=0.9)
        loss_fn = torch.nn.CrossEntropyLoss()
        target = torch.randint(0, 1000, (batch,))

        def step():
            opt.zero_grad(set_to_none=False)
            loss = loss_fn(model(x), target)
            loss.backward()
            opt.step()

        warm = 2
    else:
        model.eval()
        if mode == "jit":
            with torch.inference_mode():
                model = torch.jit.optimize_for_inference(torch.jit.script(model))

        def step():
            with torch.inference_mode():
                model(x)

        warm = 3
    for _ in range(warm):
        step()
    for _ in range(reps):
        t0 = time.perf_counter()
        step()
        times.append((time.perf_counter() - t0) * 1e3)
    return {
        "task": name,
        "mode": mode,
        "model": arch,
        "batch": batch,
        "train": train,
        "threads": threads,
        "reps": reps,
        "median_ms": round(statistics.median(times), 2),
        "min_ms": round(min(times), 2),
        "max_ms": round(max(times), 2),
        # ru_maxrss is in KiB on Linux
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "torch": torch.__version__,
        "blas": blas(),
    }


def blas():
    """The BLAS library this process mapped (Debian's torch links libblas.so.3,
    whose provider update-alternatives picks: the reference BLAS unless
    OpenBLAS is installed)."""
    libs = set()
    with open("/proc/self/maps") as f:
        for line in f:
            path = line.split()[-1]
            if "blas" in path.lower():
                libs.add(path)
    return sorted(libs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-threads", type=int, default=2)
    ap.add_argument("-only", default="", help="comma-separated task names")
    ap.add_argument("-modes", default=",".join(MODES), help="comma-separated: " + ", ".join(MODES))
    ap.add_argument("-task", default="", help=argparse.SUPPRESS)  # one task, in this process
    ap.add_argument("-mode", default="nchw", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.task:
        print(json.dumps(run_task(a.task, a.mode, a.threads)), flush=True)
        return
    names = [n for n in a.only.split(",") if n] or list(TASKS)
    modes = [m for m in a.modes.split(",") if m]
    for n in names:
        if n not in TASKS:
            sys.exit(f"bench_torch.py: unknown task {n!r} (have {', '.join(TASKS)})")
    for m in modes:
        if m not in MODES:
            sys.exit(f"bench_torch.py: unknown mode {m!r} (have {', '.join(MODES)})")
    for n in names:
        for m in modes:
            if m == "jit" and TASKS[n][3]:
                continue  # a frozen module does not train
            out = subprocess.run([sys.executable, __file__, "-threads", str(a.threads), "-task", n, "-mode", m],
                                 check=True, capture_output=True, text=True).stdout
            sys.stdout.write(out)
            sys.stdout.flush()

if __name__ == "__main__":
    main()
