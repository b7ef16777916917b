"""The study behind the transformer's default optimiser and learning rate (baselines/transformer_study.md).

The default transformer (``srhm_datasets.baselines.transformer``) is trained on ``class`` with
AdamW at a few learning rates, on two Fig. 4C configs at a P a bit above the CNN's P*
(baselines/results/fig4c_cnn_pstar/pstar.md), with a minimal loop: P fixed training rows,
minibatches drawn with replacement by a seeded generator, the test error on the first
``--num-test`` test rows every ``--eval-every`` steps. Prints a markdown table (final and best
test error per learning rate) and writes it to ``--out``.

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


def run(config: str, P: int, lr: float, args) -> dict:
    """Train the default transformer on ``P`` rows of ``config`` at ``lr``; the test errors seen."""
    cfg = srhm.get_config(config)
    train, test = srhm.generate(cfg, "train", 0, P), srhm.generate(cfg, "test", 0, args.num_test)
    x, y = encode(train["tokens"], cfg.v, "tokens"), torch.from_numpy(train["label"]).long()
    xt, yt = encode(test["tokens"], cfg.v, "tokens"), torch.from_numpy(test["label"]).long()
    model = tf.build_transformer(cfg, "class", seed=args.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=tf.DEFAULT_WEIGHT_DECAY)
    g = torch.Generator().manual_seed(args.seed)
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
    """Markdown table of (config, P, lr, result) rows."""
    lines = [
        "| config | P | lr | final test error | best test error | last train loss | wall s |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for config, P, lr, r in rows:
        lines.append(
            f"| {config} | {P} | {lr:g} | {r['final']:.3f} | {r['best']:.3f} | {r['loss']:.2e} | {r['seconds']:.0f} |"
        )
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lrs", type=float, nargs="+", default=[3e-4, 1e-3, 3e-3])
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--eval-every", type=int, default=200)
    parser.add_argument("--num-test", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = []
    for config, P in STUDY:
        for lr in args.lrs:
            rows.append((config, P, lr, run(config, P, lr, args)))
            print(table(rows[-1:]).splitlines()[-1], flush=True)
    arch = f"width {tf.DEFAULT_WIDTH}, depth {tf.DEFAULT_DEPTH}, heads {tf.DEFAULT_HEADS}"
    arch += f", mlp ratio {tf.DEFAULT_MLP_RATIO}"
    header = (
        f"Date: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC. Machine: {platform.machine()}, "
        f"{platform.processor() or 'cpu'}, torch {torch.__version__}, {args.threads} thread(s) (shared 2-core host).\n"
        f"Command: `nice -n 10 python baselines/transformer_study.py {' '.join(sys.argv[1:])}`\n\n"
        f"Model: the default transformer ({arch}), task `class`, AdamW (weight decay "
        f"{tf.DEFAULT_WEIGHT_DECAY}), batch size {args.batch_size}, {args.steps} steps, seed {args.seed}; "
        f"test error on {args.num_test} test rows every {args.eval_every} steps.\n\n"
    )
    text = header + table(rows) + "\n"
    print(text)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(text)


if __name__ == "__main__":
    main()
