#!/usr/bin/env python3
"""Write the reference trajectories that tests/integration/optimizer_parity.rs checks dropbert's optimizers against.

What it makes
-------------
Under ``tests/fixtures/optim/``:

* ``adamw.safetensors`` -- ``torch.optim.AdamW`` (single-tensor implementation, float32, CPU).
* ``lamb.safetensors``  -- a plain reference LAMB written below from the paper's algorithm.
* ``schedules.json``    -- learning-rate multipliers from ``transformers``'
  ``get_constant_schedule``, ``get_linear_schedule_with_warmup`` and
  ``get_cosine_schedule_with_warmup`` for a few (warmup, total) pairs.

Problem set-up (identical in both safetensors files)
-----------------------------------------------------
Three parameters with Hugging Face BERT names, so that the usual no-decay rule splits them:

=====================================================================  ======  =======
name                                                                   shape   decays
=====================================================================  ======  =======
``bert.encoder.layer.0.attention.self.query.weight``                   [5, 4]  yes
``bert.encoder.layer.0.attention.self.query.bias``                     [5]     no
``bert.encoder.layer.0.attention.output.LayerNorm.weight``             [4]     no
=====================================================================  ======  =======

Initial values are random (weight N(0, 0.5), bias N(0, 0.1), LayerNorm weight 1 + N(0, 0.1)).
Five random gradient sets follow, each N(0, 1) times a per-step scale (1, 0.05, 0.5, 0.1, 2) so that
global-norm clipping with ``max_norm=1`` clips some steps and leaves others alone.

Hyper-parameters: peak lr 0.05, betas (0.9, 0.999), eps 1e-6, weight decay 0.01 on the decaying
group only (0 on biases and LayerNorm weights), schedule ``get_linear_schedule_with_warmup`` with 2
warm-up steps and 5 training steps (``scheduler.step()`` after each ``optimizer.step()``, so the
first update uses the multiplier of step 0, which is 0).

Each optimizer is run twice from the same start with the same gradients: ``clip`` calls
``torch.nn.utils.clip_grad_norm_(params, max_norm=1.0)`` before every step, ``noclip`` does not.

Tensor names
------------
* ``initial/<param>``                       -- starting values
* ``gradients/<k>/<param>``                 -- the raw gradients of step k (k = 0..4), before clipping
* ``lr``                                    -- [5] learning rate used by step k
* ``<run>/<k>/<param>``                     -- parameter after step k (run = ``clip`` or ``noclip``)
* ``<run>/<k>/<param>.exp_avg``, ``.exp_avg_sq`` -- optimizer state after step k
* ``clip/<k>/grad_norm``                    -- [1] total norm returned by ``clip_grad_norm_`` at step k
* ``noclip/<k>/grad_norm``                  -- [1] the same norm computed without clipping

The hyper-parameters and library versions are also in the safetensors metadata.

LAMB reference
--------------
You et al. 2019, "Large Batch Optimization for Deep Learning: Training BERT in 76 minutes",
Algorithm 2 as NVIDIA and DeepSpeed implement it, per parameter tensor at step t (1-based)::

    m = beta1 * m + (1 - beta1) * g
    v = beta2 * v + (1 - beta2) * g * g
    m_hat = m / (1 - beta1 ** t)
    v_hat = v / (1 - beta2 ** t)
    update = m_hat / (sqrt(v_hat) + eps) + weight_decay * w
    ratio = ||w|| / ||update||   (1 when either norm is 0)
    w = w - lr * ratio * update

Gradient clipping, where used, is the same global ``clip_grad_norm_`` as for AdamW (done before the
optimizer, not inside it), and the trust ratio is applied to every tensor, including no-decay ones.

How to run
----------
    /work/venv/bin/python scripts/make_optimizer_fixtures.py [--out tests/fixtures/optim]

(venv: ``pip install torch transformers safetensors``.) Deterministic: fixed seed, float32, CPU;
reruns give byte-identical files.
"""

import argparse
import json
import math
from pathlib import Path

import safetensors
import torch
import transformers
from safetensors.torch import save_file
from transformers import (
    get_constant_schedule,
    get_cosine_schedule_with_warmup,
    get_linear_schedule_with_warmup,
)

REPO = Path(__file__).resolve().parent.parent

PARAMETERS = [
    ("bert.encoder.layer.0.attention.self.query.weight", (5, 4)),
    ("bert.encoder.layer.0.attention.self.query.bias", (5,)),
    ("bert.encoder.layer.0.attention.output.LayerNorm.weight", (4,)),
]
STEPS = 5
GRADIENT_SCALES = [1.0, 0.05, 0.5, 0.1, 2.0]
PEAK_LR = 0.05
BETAS = (0.9, 0.999)
EPS = 1e-6
WEIGHT_DECAY = 0.01
WARMUP_STEPS = 2
TOTAL_STEPS = 5
MAX_NORM = 1.0
SEED = 20240607


def decays(name: str) -> bool:
    """The no-decay rule of dropbert::optim::decays (HF's ["bias", "LayerNorm.weight"] plus Pre-LN names)."""
    module, _, leaf = name.rpartition(".")
    if leaf == "bias":
        return False
    return not module.rpartition(".")[2].endswith("LayerNorm")


def make_problem():
    generator = torch.Generator().manual_seed(SEED)
    initial = {}
    for name, shape in PARAMETERS:
        noise = torch.randn(shape, generator=generator, dtype=torch.float32)
        if name.endswith("LayerNorm.weight"):
            initial[name] = 1.0 + 0.1 * noise
        elif name.endswith("bias"):
            initial[name] = 0.1 * noise
        else:
            initial[name] = 0.5 * noise
    gradients = []
    for scale in GRADIENT_SCALES:
        gradients.append(
            {
                name: scale * torch.randn(shape, generator=generator, dtype=torch.float32)
                for name, shape in PARAMETERS
            }
        )
    return initial, gradients


def lamb_step(params, states, step, lr, weight_decays):
    """One LAMB update of every parameter, in place (reference implementation, see the docstring)."""
    beta1, beta2 = BETAS
    bias_correction1 = 1 - beta1**step
    bias_correction2 = 1 - beta2**step
    with torch.no_grad():
        for param, state, weight_decay in zip(params, states, weight_decays):
            grad = param.grad
            state["exp_avg"].mul_(beta1).add_(grad, alpha=1 - beta1)
            state["exp_avg_sq"].mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
            m_hat = state["exp_avg"] / bias_correction1
            v_hat = state["exp_avg_sq"] / bias_correction2
            update = m_hat / (v_hat.sqrt() + EPS)
            if weight_decay != 0:
                update = update + weight_decay * param
            weight_norm = param.norm()
            update_norm = update.norm()
            if weight_norm > 0 and update_norm > 0:
                ratio = (weight_norm / update_norm).item()
            else:
                ratio = 1.0
            param.add_(update, alpha=-lr * ratio)


def run(algorithm, clip, initial, gradients, out, prefix):
    names = [name for name, _ in PARAMETERS]
    params = [torch.nn.Parameter(initial[name].clone()) for name in names]
    weight_decays = [WEIGHT_DECAY if decays(name) else 0.0 for name in names]
    groups = [
        {"params": [p for p, wd in zip(params, weight_decays) if wd != 0], "weight_decay": WEIGHT_DECAY},
        {"params": [p for p, wd in zip(params, weight_decays) if wd == 0], "weight_decay": 0.0},
    ]
    if algorithm == "adamw":
        optimizer = torch.optim.AdamW(groups, lr=PEAK_LR, betas=BETAS, eps=EPS, foreach=False)
        states = None
    else:
        # The update is lamb_step's; a plain SGD on a dummy parameter with a zero gradient only
        # carries the scheduled lr (stepped so that the scheduler sees the usual call order).
        dummy = torch.nn.Parameter(torch.zeros(1))
        dummy.grad = torch.zeros(1)
        optimizer = torch.optim.SGD([dummy], lr=PEAK_LR)
        states = [
            {"exp_avg": torch.zeros_like(p), "exp_avg_sq": torch.zeros_like(p)} for p in params
        ]
    scheduler = get_linear_schedule_with_warmup(optimizer, WARMUP_STEPS, TOTAL_STEPS)
    lrs = []
    for k in range(STEPS):
        for p, name in zip(params, names):
            p.grad = gradients[k][name].clone()
        if clip:
            norm = torch.nn.utils.clip_grad_norm_(params, max_norm=MAX_NORM)
        else:
            norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(p.grad) for p in params]))
        lr = optimizer.param_groups[0]["lr"]
        lrs.append(lr)
        optimizer.step()
        if algorithm == "lamb":
            lamb_step(params, states, k + 1, lr, weight_decays)
        scheduler.step()
        out[f"{prefix}/{k}/grad_norm"] = norm.reshape(1).clone()
        for i, (p, name) in enumerate(zip(params, names)):
            out[f"{prefix}/{k}/{name}"] = p.detach().clone()
            state = optimizer.state[p] if algorithm == "adamw" else states[i]
            out[f"{prefix}/{k}/{name}.exp_avg"] = state["exp_avg"].clone()
            out[f"{prefix}/{k}/{name}.exp_avg_sq"] = state["exp_avg_sq"].clone()
    return lrs


def write_trajectories(out_dir: Path):
    initial, gradients = make_problem()
    for algorithm in ["adamw", "lamb"]:
        tensors = {f"initial/{name}": value for name, value in initial.items()}
        for k, step in enumerate(gradients):
            for name, value in step.items():
                tensors[f"gradients/{k}/{name}"] = value
        lrs = run(algorithm, True, initial, gradients, tensors, "clip")
        lrs_noclip = run(algorithm, False, initial, gradients, tensors, "noclip")
        assert lrs == lrs_noclip
        tensors["lr"] = torch.tensor(lrs, dtype=torch.float32)
        # One metadata entry: safetensors writes its metadata map in hash order, so several keys
        # would make the file differ from run to run.
        reference = {
            "algorithm": algorithm,
            "peak_lr": repr(PEAK_LR),
            "betas": repr(BETAS),
            "eps": repr(EPS),
            "weight_decay": repr(WEIGHT_DECAY),
            "schedule": f"get_linear_schedule_with_warmup(warmup={WARMUP_STEPS}, total={TOTAL_STEPS})",
            "max_norm": repr(MAX_NORM),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "safetensors": safetensors.__version__,
        }
        metadata = {"reference": json.dumps(reference, sort_keys=True)}
        tensors = {name: value.contiguous() for name, value in sorted(tensors.items())}
        save_file(tensors, str(out_dir / f"{algorithm}.safetensors"), metadata=metadata)
        print(f"wrote {out_dir / f'{algorithm}.safetensors'} ({len(tensors)} tensors), lrs {lrs}")


def write_schedules(out_dir: Path):
    """Multipliers (lr / peak) of HF's schedules at every step of a few settings."""
    dummy = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    cases = []
    for kind, warmup, total in [
        ("constant", 0, 12),
        ("linear", 0, 10),
        ("linear", 3, 10),
        ("linear", 4, 4),
        ("linear", 10, 1000),
        ("cosine", 0, 10),
        ("cosine", 3, 10),
        ("cosine", 100, 1000),
    ]:
        if kind == "constant":
            scheduler = get_constant_schedule(dummy)
        elif kind == "linear":
            scheduler = get_linear_schedule_with_warmup(dummy, warmup, total)
        else:
            scheduler = get_cosine_schedule_with_warmup(dummy, warmup, total)
        # LambdaLR keeps one lambda per group; evaluate it directly at every step (plus a few past the end).
        schedule = scheduler.lr_lambdas[0]
        steps = list(range(0, total + 3)) if total <= 20 else [0, 1, 5, 9, 10, 11, 99, 100, 101, 500, 999, 1000, 1001]
        cases.append(
            {
                "kind": kind,
                "warmup_steps": warmup,
                "total_steps": total,
                "steps": steps,
                "multipliers": [float(schedule(s)) for s in steps],
            }
        )
    document = {"transformers": transformers.__version__, "cases": cases}
    path = out_dir / "schedules.json"
    path.write_text(json.dumps(document, indent=1) + "\n")
    print(f"wrote {path} ({len(cases)} cases)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "tests/fixtures/optim")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    torch.use_deterministic_algorithms(True)
    write_trajectories(args.out)
    write_schedules(args.out)


if __name__ == "__main__":
    main()
