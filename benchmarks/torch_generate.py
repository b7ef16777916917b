"""The generator on a torch device against the numpy generator (a benchmark, not a test).

Two tables, every ratio measured in the same run:

* samples/s: ``TorchGenerator(cfg, device).rows`` against numpy ``generate``, train rows
  0..P-1 in blocks of ``--block`` rows (all columns);
* encoded batches/s: ``SRHMStream(cfg, batch_size=B, device=device)`` + ``to_device``
  (generated and encoded on the device) against the CPU stream (numpy rows, then
  ``to_device`` moves the uint8 tokens to the device and encodes them there), whiten
  float32 [B, v, d].

The device defaults to ``default_device()`` (cuda, then mps, then cpu); ``--threads`` sets
torch's intra-op threads and numpy's ``workers`` alike.

    .venv/bin/python benchmarks/torch_generate.py [--device cuda] [--P 262144] [--threads 1]
"""

from __future__ import annotations

import argparse
import itertools
import time

import torch

from srhm_datasets import SRHMConfig, generate
from srhm_datasets.config import require_int
from srhm_datasets.torch import SRHMStream, TorchGenerator
from srhm_datasets.torch_data.encoding import check_device

CONFIGS = {
    "RHM L=3, s0=0, v=8": SRHMConfig(L=3, s=2, s0=0, v=8, nc=8, m=8, seed=0),
    "Fig. 1 (L=2, s0=2, v=10)": SRHMConfig(L=2, s=2, s0=2, v=10, nc=10, m=10, seed=1),
    "L=3, s0=2, v=10 (d=216)": SRHMConfig(L=3, s=2, s0=2, v=10, nc=10, m=10, seed=1),
    "L=4, s0=1, v=16 (P_max=2^94)": SRHMConfig(L=4, s=2, s0=1, v=16, nc=16, m=16),
}


def sync(device: torch.device) -> None:
    """Wait for the device's queued work, so that a timer sees it done."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def rate(fn, items: int, device: torch.device, seconds: float) -> float:
    """items/s of ``fn()`` (each call produces ``items``), repeated for at least ``seconds`` after a warm-up call."""
    fn()
    sync(device)
    calls, t = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - t) < seconds or calls == 0:
        fn()
        sync(device)
        calls += 1
    return calls * items / elapsed


def blocks(P: int, block: int):
    return [(a, min(P, a + block)) for a in range(0, P, block)]


def samples_per_second(cfg: SRHMConfig, args, device: torch.device) -> tuple[float, float]:
    """(torch, numpy) samples/s of train rows 0..P-1."""
    P = min(args.P, cfg.split_sizes()["train"])
    gen = TorchGenerator(cfg, device)
    ours = rate(lambda: [gen.rows("train", a, b) for a, b in blocks(P, args.block)], P, device, args.seconds)
    ref = rate(
        lambda: [generate(cfg, "train", a, b, workers=args.threads) for a, b in blocks(P, args.block)],
        P,
        device,
        args.seconds,
    )
    return ours, ref


def batches_per_second(cfg: SRHMConfig, args, device: torch.device) -> tuple[float, float]:
    """(device stream, CPU stream) encoded batches/s of ``--batches`` batches of ``--batch-size``."""

    def run(stream: SRHMStream):
        def consume():
            for batch in itertools.islice(stream, args.batches):
                stream.to_device(batch, device)

        return consume

    ours = SRHMStream(cfg, batch_size=args.batch_size, device=device)
    ref = SRHMStream(cfg, batch_size=args.batch_size)
    return rate(run(ours), args.batches, device, args.seconds), rate(run(ref), args.batches, device, args.seconds)


def markdown_row(cells) -> str:
    return "| " + " | ".join(cells) + " |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=None, help="default: default_device()")
    parser.add_argument("--P", type=int, default=1 << 18, help="rows per samples/s measurement")
    parser.add_argument("--block", type=int, default=1 << 16, help="rows per generator call")
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--batches", type=int, default=64, help="batches per stream measurement")
    parser.add_argument("--threads", type=int, default=1, help="torch threads and numpy workers")
    parser.add_argument("--seconds", type=float, default=2.0, help="least time per measurement")
    args = parser.parse_args()
    try:  # bad values named before any work (the package's ValueError), as argparse reports its own
        for name in ("P", "block", "batch_size", "batches", "threads"):
            require_int("--" + name.replace("_", "-"), getattr(args, name), 1)
        device = torch.device(check_device(args.device))
    except ValueError as err:
        parser.error(str(err))
    torch.set_num_threads(args.threads)
    print(f"device {device}, {args.threads} thread(s), torch {torch.__version__}")
    header = ("config", "torch samples/s", "numpy samples/s", "ratio", "device stream batches/s", "CPU stream", "ratio")
    print(markdown_row(header))
    print(markdown_row(("---",) + ("---:",) * (len(header) - 1)))
    for name, cfg in CONFIGS.items():
        ours, ref = samples_per_second(cfg, args, device)
        b_ours, b_ref = batches_per_second(cfg, args, device)
        speeds = (f"{ours:,.0f}", f"{ref:,.0f}", f"{ours / ref:.2f}x")
        batches = (f"{b_ours:,.1f}", f"{b_ref:,.1f}", f"{b_ours / b_ref:.2f}x")
        print(markdown_row((name,) + speeds + batches))


if __name__ == "__main__":
    main()
