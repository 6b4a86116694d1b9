#!/usr/bin/env python3
"""Writes sweep.json: the sets of the parity sweep (run once; make.py --search then fixed some overwrite seeds,
and sweep.json, not this file, is the record). Published structures scaled down (batch 4, seq 16, hidden 32), the
known hard TRM case, a bfloat16 set, and random configurations drawn from a seeded generator. Hidden sizes of the
random sets stay at 16-24 and their blocks at 2-3 (HRM) or 1-2 (TRM), 2 layers only at hidden 16, to keep the sweep
small: the SwiGLU width is at least 256 whatever the hidden size, and each weight is stored 4 times (weights,
float32 gradient, float64 gradient)."""
import json
import random

rng = random.Random(20261203)
BASE = dict(batch_size=4, seq_len=16, num_puzzle_identifiers=8, halt_exploration_prob=0.0, rms_norm_eps=1e-5,
            rope_theta=10000.0, forward_dtype="float32")
sets = []


def add(name, model, override, seeds, note, q_bias=None):
    s = {"name": name, "model": model, "note": note, "seeds": dict(zip(("model", "overwrite", "batch"), seeds)),
         "override": dict(BASE, **override)}
    if q_bias is not None:
        s["q_bias"] = q_bias
    sets.append(s)


hrm_paper = dict(vocab_size=12, hidden_size=32, num_heads=2, expansion=4, H_layers=4, L_layers=4, H_cycles=2,
                 L_cycles=2, puzzle_emb_ndim=32, halt_max_steps=16)
add("hrm_paper_rope", "hrm", dict(hrm_paper, pos_encodings="rope"), (0, 3, 2),
    "HRM paper structure (4+4 layers, 2x2 cycles, 16 steps), hidden 32, RoPE")
add("hrm_paper_learned", "hrm", dict(hrm_paper, pos_encodings="learned"), (1, 4, 5),
    "HRM paper structure, learned positions")
trm_paper = dict(vocab_size=12, hidden_size=32, num_heads=2, expansion=4, H_layers=0, L_layers=2, H_cycles=3,
                 L_cycles=6, puzzle_emb_ndim=32, puzzle_emb_len=16, halt_max_steps=16, no_ACT_continue=True)
add("trm_paper_attn", "trm", dict(trm_paper, mlp_t=False, pos_encodings="rope"), (0, 3, 2),
    "TRM paper structure (2 layers, 3x6 cycles, 16 prefix tokens, 16 steps), attention + RoPE", [0.0, 0.0])
add("trm_paper_mlp_t", "trm", dict(trm_paper, mlp_t=True, pos_encodings="none", halt_max_steps=2), (1, 5, 7),
    "TRM paper structure, mlp_t (Sudoku variant), no positions; halt_max_steps 2: with 16 the float32 reference "
    "is chaotic from its 3rd consecutive segment (q-logit spread vs float64 2e-3, then 0.13)", [0.0, 0.0])
add("hrm_bf16", "hrm", dict(vocab_size=12, hidden_size=16, num_heads=2, expansion=4, H_layers=1, L_layers=1,
                            H_cycles=2, L_cycles=2, puzzle_emb_ndim=16, halt_max_steps=4, pos_encodings="rope",
                            forward_dtype="bfloat16"), (0, 3, 2),
    "HRM, forward_dtype bfloat16 (the reference run in bf16 on the CPU)")
add("trm_hard", "trm", dict(vocab_size=12, hidden_size=32, num_heads=2, expansion=4, H_layers=0, L_layers=1,
                            H_cycles=3, L_cycles=2, puzzle_emb_ndim=48, puzzle_emb_len=0, halt_max_steps=4,
                            mlp_t=True, pos_encodings="learned", no_ACT_continue=True), (0, 3, 2),
    "the known hard one: mlp_t, learned positions, ceil(48/32) = 2 prefix tokens, 1 layer, 3x2 cycles, early halt",
    [0.0, 0.0])


def heads_for(h):
    return [n for n in (2, 4) if h % n == 0 and (h // n) % 2 == 0 and h // n >= 8]


def seeds():
    return (rng.randrange(100), rng.randrange(100), rng.randrange(100))


for i in range(10):
    h = rng.choice([16, 16, 24])
    o = dict(vocab_size=rng.choice([12, 14]), hidden_size=h, num_heads=rng.choice(heads_for(h)),
             expansion=rng.choice([1, 2, 4]), H_layers=1, L_layers=rng.choice([1, 2]) if h == 16 else 1,
             H_cycles=rng.choice([1, 2, 3]), L_cycles=rng.choice([1, 2, 3]),
             pos_encodings=rng.choice(["rope", "learned"]), puzzle_emb_ndim=rng.choice([h, h // 2, h + h // 2, 2 * h]),
             halt_max_steps=rng.choice([2, 3, 4, 6]))
    add(f"hrm_r{i:02d}", "hrm", o, seeds(), "random HRM configuration")
for i in range(10):
    h = rng.choice([16, 16, 24])
    nd = rng.choice([h, h // 2, h + h // 2, 2 * h])
    ceil = -(nd // -h)
    o = dict(vocab_size=rng.choice([12, 14]), hidden_size=h, num_heads=rng.choice(heads_for(h)),
             expansion=rng.choice([1, 2, 4]), H_layers=0, L_layers=rng.choice([1, 2]) if h == 16 else 1, H_cycles=rng.choice([1, 2, 3]),
             L_cycles=rng.choice([1, 2, 3, 4]), pos_encodings=rng.choice(["rope", "learned", "none"]),
             puzzle_emb_ndim=nd, puzzle_emb_len=rng.choice([0, 0, ceil, ceil + 1, 4]),
             halt_max_steps=rng.choice([2, 3, 4, 6]), mlp_t=i % 2 == 0, no_ACT_continue=True)
    add(f"trm_r{i:02d}", "trm", o, seeds(), "random TRM configuration",
        [round(rng.uniform(-0.15, 0.15), 3), round(rng.uniform(-0.5, 0.5), 3)])

with open("sweep.json", "w") as f:
    json.dump({"generators": "shared/tools/golden/make_golden.py (HRM), make_golden_trm.py (TRM); driver: make.py",
               "sets": sets}, f, indent=1)
print(len(sets), "sets")
