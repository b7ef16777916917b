"""The study behind the transformer's default optimiser and learning rate (baselines/transformer_study.md).

The default transformer (``srhm_datasets.baselines.transformer``) is trained on ``class`` with
AdamW at a few learning rates, on two Fig. 4C configs at a P a bit above the CNN's P*
(baselines/results/fig4c_cnn_pstar/pstar.md), with a minimal loop: P fixed training rows,
minibatches drawn with replacement by a seeded generator, the test error on the first
``--num-test`` test rows every ``--eval-every`` steps, for each of ``--seeds`` (initialisation
and batch order). Prints two markdown tables (every run; the final test error per learning rate,
averaged over the seeds, and the learning rate of the lowest average over both configs) and
writes them to ``--out``.

    nice -n 10 python baselines/transformer_study.py --out baselines/transformer_study.md
"""

from __future__ import annotations

import argparse
import datetime
import platform
import sys
import time

import torch

import srhm_datasets as srhm
from srhm_datasets.baselines import transformer as tf
from srhm_datasets.torch import encode

#: (config, P): P about 2x the CNN's P* at width 128 (391 for demo, 150 for grid_L2_s0-1_v3).
STUDY = (("demo", 800), ("grid_L2_s0-1_v3", 300))


def test_error(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of rows of ``x`` [N, d] ids whose argmax logit is not the label ``y`` [N]."""
    model.eval()
    with torch.inference_mode():
        wrong = sum(int((model(x[a : a + 1024]).argmax(-1) != y[a : a + 1024]).sum()) for a in range(0, len(x), 1024))
    model.train()
    return wrong / len(x)


def run(config: str, P: int, lr: float, seed: int, args) -> dict:
    """Train the default transformer on ``P`` rows of ``config`` at ``lr``; the test errors seen."""
    cfg = srhm.get_config(config)
    train, test = srhm.generate(cfg, "train", 0, P), srhm.generate(cfg, "test", 0, args.num_test)
    x, y = encode(train["tokens"], cfg.v, "tokens"), torch.from_numpy(train["label"]).long()
    xt, yt = encode(test["tokens"], cfg.v, "tokens"), torch.from_numpy(test["label"]).long()
    model = tf.build_transformer(cfg, "class", seed=seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=tf.DEFAULT_WEIGHT_DECAY)
    g = torch.Generator().manual_seed(seed)
    errors, start = [], time.perf_counter()
    for step in range(1, args.steps + 1):
        idx = torch.randint(0, P, (args.batch_size,), generator=g)
        loss = tf.task_loss(model(x[idx]), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % args.eval_every == 0 or step == args.steps:
            errors.append(test_error(model, xt, yt))
    seconds = time.perf_counter() - start
    return {"final": errors[-1], "best": min(errors), "loss": float(loss.detach()), "seconds": seconds}


def table(rows: list[tuple]) -> str:
    """Markdown table of (config, P, lr, seed, result) rows."""
    lines = [
        "| config | P | lr | seed | final test error | best test error | last train loss | wall s |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for config, P, lr, seed, r in rows:
        errors = f"{r['final']:.3f} | {r['best']:.3f} | {r['loss']:.2e}"
        lines.append(f"| {config} | {P} | {lr:g} | {seed} | {errors} | {r['seconds']:.0f} |")
    return "\n".join(lines)


def summary(rows: list[tuple], lrs: list[float]) -> tuple[str, float]:
    """Markdown table of the final test error per lr (mean over seeds) per config, and the lr whose mean
    over the configs is lowest."""
    configs = [config for config, _ in STUDY]
    mean = {
        (c, lr): sum(r["final"] for cc, _, ll, _, r in rows if (cc, ll) == (c, lr))
        / sum(1 for cc, _, ll, _, _ in rows if (cc, ll) == (c, lr))
        for c in configs
        for lr in lrs
    }
    overall = {lr: sum(mean[c, lr] for c in configs) / len(configs) for lr in lrs}
    lines = ["| lr | " + " | ".join(configs) + " | mean |", "| ---: |" + " ---: |" * (len(configs) + 1)]
    for lr in lrs:
        lines.append(f"| {lr:g} | " + " | ".join(f"{mean[c, lr]:.3f}" for c in configs) + f" | {overall[lr]:.3f} |")
    return "\n".join(lines), min(lrs, key=overall.get)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lrs", type=float, nargs="+", default=[3e-4, 1e-3, 2e-3, 3e-3])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--eval-every", type=int, default=250)
    parser.add_argument("--num-test", type=int, default=1000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = []
    for config, P in STUDY:
        for lr in args.lrs:
            for seed in args.seeds:
                rows.append((config, P, lr, seed, run(config, P, lr, seed, args)))
                print(table(rows[-1:]).splitlines()[-1], flush=True)
    arch = f"width {tf.DEFAULT_WIDTH}, depth {tf.DEFAULT_DEPTH}, heads {tf.DEFAULT_HEADS}"
    arch += f", mlp ratio {tf.DEFAULT_MLP_RATIO}"
    header = (
        f"Date: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC. Machine: {platform.machine()}, "
        f"{platform.processor() or 'cpu'}, torch {torch.__version__}, {args.threads} thread(s) (shared 2-core host).\n"
        f"Command: `nice -n 10 python baselines/transformer_study.py {' '.join(sys.argv[1:])}`\n\n"
        f"Model: the default transformer ({arch}), task `class`, AdamW (weight decay "
        f"{tf.DEFAULT_WEIGHT_DECAY}), batch size {args.batch_size}, {args.steps} steps, seeds {args.seeds}; "
        f"test error on {args.num_test} test rows every {args.eval_every} steps.\n\n"
    )
    means, best = summary(rows, args.lrs)
    text = header + table(rows) + "\n\nFinal test error, mean over the seeds:\n\n" + means
    text += f"\n\nLowest mean over the configs: lr = {best:g}.\n"
    print(text)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(text)


if __name__ == "__main__":
    main()
