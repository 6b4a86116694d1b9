#!/usr/bin/env bash
# The GPU check of hrm-rs, written into a bundle by `cargo xtask gpu-bundle` (README, "The GPU check").
#
#   bash <bundle>/run.sh                         # on a CUDA machine with torch 2.11 (pip or libtorch)
#   HRM_CHECK_DEVICE=cpu bash <bundle>/run.sh    # a dry run of the script's logic on any machine (steps shortened)
#
# Steps, each with its own timeout and one PASS/FAIL/SKIP line (NOFIT: a bench batch size too large), going on
# after a failure, all within HRM_CHECK_BUDGET_S seconds (default 360):
#   1. hrm info (CUDA must be visible);
#   2. golden parity (HRM and TRM) in f32 and bf16, micro-batching, data-parallel ranks in one process and resume, on
#      the device;
#   3. hrm bench train-step, HRM and TRM ARC configurations in bf16, batch sizes from the largest down to the first
#      that fits;
#   4. a short arc1 training on the bundled dataset; PASS when train/lm_loss fell;
#   5. data-parallel: 30 steps (6 on the CPU) as one process and as a world of one rank (WORLD_SIZE=1: NCCL on CUDA, TCP on the
#      CPU), PASS when both log the same metrics; then hrm bench all-reduce of the HRM and TRM ARC gradients.
# The log and the summary go to ${OUT:-./gpu-check-out}. The exit status is 0 when nothing failed.
#
# Environment: LIBTORCH (a torch folder with lib/, else the torch of python3 or /opt/torch/.venv/bin/python),
# HRM_CHECK_DEVICE (cuda | cpu), HRM_CHECK_BUDGET_S, HRM_CHECK_TRAIN_MINUTES (default 3 on CUDA, 0.5 on the CPU).
set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OUT=${OUT:-./gpu-check-out}
mkdir -p "$OUT" && OUT=$(cd "$OUT" && pwd)
LOG=$OUT/log.txt
SUMMARY=$OUT/summary.txt
: >"$LOG"
: >"$SUMMARY"
DEVICE=${HRM_CHECK_DEVICE:-cuda}
BUDGET=${HRM_CHECK_BUDGET_S:-480}
START=$SECONDS
PASSED=0 FAILED=0 SKIPPED=0

say() { echo "$*" | tee -a "$LOG"; }
record() { # STATUS NAME DETAIL
    say "$1 $2${3:+ ($3)}"
    echo "$1 $2${3:+ ($3)}" >>"$SUMMARY"
    case $1 in PASS) PASSED=$((PASSED + 1)) ;; FAIL) FAILED=$((FAILED + 1)) ;; SKIP) SKIPPED=$((SKIPPED + 1)) ;; esac
}
left() { echo $((BUDGET - (SECONDS - START))); }

# The seconds a step may take: its own limit, within what the budget leaves after RESERVE seconds for later steps.
RESERVE=0
allowed() { # MAX
    local t=$(($(left) - RESERVE))
    [ "$t" -gt "$1" ] && t=$1
    echo "$t"
}

# run_step NAME MAX_SECONDS CMD...: runs CMD under `timeout`, its output into the log; sets STEP_RC. A failure is
# recorded as $FAIL_AS (FAIL, or NOFIT for a bench batch size that is allowed not to fit); the tests' `note:` lines
# go into the summary too.
FAIL_AS=FAIL
run_step() {
    local name=$1 max=$2
    shift 2
    local t
    t=$(allowed "$max")
    if [ "$t" -lt 5 ]; then
        record SKIP "$name" "no time left in the ${BUDGET}s budget"
        STEP_RC=125
        return
    fi
    say "==> $name (timeout ${t}s): $*"
    local t0=$SECONDS lines
    lines=$(wc -l <"$LOG")
    timeout -k 5 "$t" "$@" >>"$LOG" 2>&1
    STEP_RC=$?
    local dt=$((SECONDS - t0))
    tail -n +$((lines + 1)) "$LOG" | grep '^note:' | tee -a "$SUMMARY"
    if [ $STEP_RC -eq 0 ]; then
        record PASS "$name" "${dt}s"
    elif [ $STEP_RC -eq 124 ] || [ $STEP_RC -eq 137 ]; then
        record "$FAIL_AS" "$name" "timed out after ${dt}s"
    else
        record "$FAIL_AS" "$name" "exit $STEP_RC after ${dt}s; see the log"
    fi
}

# --- torch ---------------------------------------------------------------------------------------------------------
TORCH=""
if [ -n "${LIBTORCH:-}" ]; then
    TORCH=$LIBTORCH
    VERSION=$(sed -n "s/^__version__ = '\(.*\)'/\1/p" "$TORCH/version.py" 2>/dev/null ||
        cat "$TORCH/build-version" 2>/dev/null)
else
    for py in python3 /opt/torch/.venv/bin/python; do
        found=$("$py" -c 'import torch,os;print(os.path.dirname(torch.__file__));print(torch.__version__)' 2>/dev/null) || continue
        TORCH=$(echo "$found" | sed -n 1p)
        VERSION=$(echo "$found" | sed -n 2p)
        break
    done
fi
if [ -z "$TORCH" ] || [ ! -d "$TORCH/lib" ]; then
    say "FATAL: no torch found: set LIBTORCH to a torch 2.11 folder (with lib/), or make python3 import torch"
    echo "FAIL torch (not found)" >>"$SUMMARY"
    exit 2
fi
case ${VERSION:-} in
2.11*) ;;
*)
    say "FATAL: torch at $TORCH is version '${VERSION:-unknown}', the binaries need 2.11"
    echo "FAIL torch (version ${VERSION:-unknown})" >>"$SUMMARY"
    exit 2
    ;;
esac
# The binaries' baked rpath names the build machine's venv; LD_LIBRARY_PATH wins over it (a RUNPATH).
export LD_LIBRARY_PATH="$TORCH/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
# The NCCL backend opens `libnccl.so`; the wheel ships `nvidia/nccl/lib/libnccl.so.2` (cargo xtask setup links
# it on the build machine; here a link in the output folder does).
NCCL_SO=$(ls "$TORCH"/../nvidia/nccl/lib/libnccl.so* 2>/dev/null | head -n 1)
if [ -n "$NCCL_SO" ] && [ ! -e "$TORCH/lib/libnccl.so" ]; then
    mkdir -p "$OUT/nccl-link" && ln -sf "$NCCL_SO" "$OUT/nccl-link/libnccl.so"
    export LD_LIBRARY_PATH="$OUT/nccl-link:$LD_LIBRARY_PATH"
fi
export HRM_GOLDEN_DIR=$HERE/golden
HRM=$HERE/bin/hrm
say "gpu check: device $DEVICE, torch $VERSION at $TORCH, budget ${BUDGET}s, output $OUT"
say "bundle: $(head -n 3 "$HERE/BUNDLE.txt" 2>/dev/null | tr '\n' ' ')"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader >>"$LOG" 2>&1

if [ "$DEVICE" = cuda ]; then
    TRAIN_MIN=${HRM_CHECK_TRAIN_MINUTES:-3}
    BENCH_DIMS=(--hidden 512 --seq 900)
    HRM_BATCHES="768 384 192 96 48"
    TRM_BATCHES="768 384 192 96 48"
    BENCH_MAX=90
    DIST_STEPS=30
else
    TRAIN_MIN=${HRM_CHECK_TRAIN_MINUTES:-0.5}
    BENCH_DIMS=(--hidden 64 --seq 64)
    HRM_BATCHES="16 8"
    TRM_BATCHES="16 8"
    BENCH_MAX=60
    DIST_STEPS=6
fi
# Kept for steps 4 and 5 until they run: step 4's minutes, plus start-up, the final checkpoint and a margin, and
# step 5's 150 s.
TRAIN_LIMIT=$(awk -v m="$TRAIN_MIN" 'BEGIN { printf "%d", m * 60 + 40 }')
DIST_LIMIT=150
RESERVE=$((TRAIN_LIMIT + DIST_LIMIT))

# --- 1. hrm info ---------------------------------------------------------------------------------------------------
run_step "1 hrm info" 30 "$HRM" info
if [ "$DEVICE" = cuda ] && [ $STEP_RC -eq 0 ] && ! grep -q "cuda available  true" "$LOG"; then
    record FAIL "1 cuda visible" "hrm info reports no CUDA device"
fi

# --- 2. golden parity, micro-batching, resume ----------------------------------------------------------------------
# HRM_TEST_REPORT makes every bounded check print its worst error: the log holds the figures of this device.
for dtype in f32 bf16; do
    for t in golden trm_golden; do
        run_step "2 $t $DEVICE $dtype" 60 env HRM_TEST_DEVICE="$DEVICE" HRM_TEST_DTYPE=$dtype HRM_TEST_REPORT=1 \
            "$HERE/tests/$t" --test-threads 1 --nocapture
    done
done
run_step "2 micro_batch $DEVICE" 60 env HRM_TEST_DEVICE="$DEVICE" "$HERE/tests/micro_batch" --test-threads 1
run_step "2 data_parallel $DEVICE (2 and 4 in-process ranks)" 60 env HRM_TEST_DEVICE="$DEVICE" \
    "$HERE/tests/data_parallel" --test-threads 1
run_step "2 resume $DEVICE (f32, bf16)" 90 env HRM_TEST_DEVICE="$DEVICE" "$HERE/tests/run" --exact \
    resume_from_a_kept_checkpoint_reproduces_the_metrics --test-threads 1

# --- 3. bench train-step, ARC configurations in bf16 ---------------------------------------------------------------
bench() { # NAME BATCHES ARGS...: the largest batch first, down to the first that fits
    local name=$1 batches=$2
    shift 2
    local b fits=""
    for b in $batches; do
        FAIL_AS=NOFIT
        run_step "3 bench $name batch $b" "$BENCH_MAX" "$HRM" bench train-step "$@" "${BENCH_DIMS[@]}" \
            --batch "$b" --steps 3 --device "$DEVICE" --dtype bf16
        FAIL_AS=FAIL
        [ $STEP_RC -eq 125 ] && return
        if [ $STEP_RC -eq 0 ]; then
            fits=$b
            break
        fi
    done
    if [ -z "$fits" ]; then
        record FAIL "3 bench $name" "no batch size of '$batches' ran"
    else
        say "bench $name: largest batch that fits: $fits; $(grep -E "^(hrm|trm) cycles" "$LOG" | tail -n 1)"
    fi
}
bench "hrm (H 4 + L 4 layers, 2x2 cycles)" "$HRM_BATCHES" --arch hrm --layers 4 --cycles 2x2
bench "trm (2 layers, 3x4 cycles)" "$TRM_BATCHES" --arch trm --layers 2 --cycles 3x4

# --- 4. a short arc1 training ---------------------------------------------------------------------------------------
RESERVE=$DIST_LIMIT
RUN=$OUT/train-run
rm -rf "$RUN"
# The bundled dataset was built with `--recipe arc1-cpu --set data.num_aug=8`; the same settings train on it.
run_step "4 train arc1 ${TRAIN_MIN} min on $DEVICE" "$TRAIN_LIMIT" "$HRM" train arc1-cpu --quiet \
    --dataset "$HERE/data/arc1-gpu-check" --run "$RUN" --device "$DEVICE" \
    --set data.num_aug=8 --set 'arch.forward_dtype="auto"' --set train.max_minutes="$TRAIN_MIN" \
    --set train.log_every=10
losses=$(grep -o '"train/lm_loss":[-0-9.eE+]*' "$RUN/metrics.jsonl" 2>/dev/null | cut -d: -f2)
steps=$(grep '"train/lm_loss"' "$RUN/metrics.jsonl" 2>/dev/null | tail -n 1 | grep -o '"step":[0-9]*' | cut -d: -f2)
first=$(echo "$losses" | sed -n 1p)
last=$(echo "$losses" | tail -n 1)
if [ -z "$first" ] || [ "$(echo "$losses" | wc -l)" -lt 2 ]; then
    record FAIL "4 lm_loss fell" "fewer than two train/lm_loss lines in $RUN/metrics.jsonl"
elif awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < a) }'; then
    record PASS "4 lm_loss fell" "first $first, last $last at step ${steps:-?}"
else
    record FAIL "4 lm_loss fell" "first $first, last $last at step ${steps:-?}"
fi

# --- 5. data-parallel: a world of one rank equals one process; the gradient all-reduce -----------------------------
RESERVE=0
dist_run() { # NAME RUN EXTRA_ENV...: DIST_STEPS steps of arc1-cpu on the bundled dataset, a 256-row evaluation
    local name=$1 run=$2
    shift 2
    rm -rf "$run"
    run_step "$name" 60 env "$@" "$HRM" train arc1-cpu --quiet --dataset "$HERE/data/arc1-gpu-check" --run "$run" \
        --device "$DEVICE" --set data.num_aug=8 --set 'arch.forward_dtype="auto"' --set train.max_steps="$DIST_STEPS" \
        --set train.log_every=2 --set eval.max_examples=256
}
dist_run "5 train $DIST_STEPS steps, one process" "$OUT/dist-single"
dist_run "5 train $DIST_STEPS steps, WORLD_SIZE=1" "$OUT/dist-world1" WORLD_SIZE=1 RANK=0 LOCAL_RANK=0 \
    MASTER_ADDR=127.0.0.1 MASTER_PORT=$((20000 + RANDOM % 20000)) HRM_DIST_TIMEOUT_S=30
# Equal up to the device's own run-to-run noise (CUDA's atomic adds in backward): every value within 1e-2.
if worst=$(python3 - "$OUT/dist-single/metrics.jsonl" "$OUT/dist-world1/metrics.jsonl" <<'PY'
import json, sys
a, b = ([json.loads(l) for l in open(p)] for p in sys.argv[1:3])
assert a and len(a) == len(b), f"{len(a)} vs {len(b)} lines"
worst = max(abs(x[k] - y[k]) / max(1.0, abs(x[k])) for x, y in zip(a, b) for k in x if k != "step")
print(f"{len(a)} lines, worst relative difference {worst:.2e}")
sys.exit(0 if worst <= 1e-2 else 1)
PY
); then
    record PASS "5 world of one rank = one process" "$worst"
else
    record FAIL "5 world of one rank = one process" "${worst:-metrics missing}; see $OUT/dist-*"
fi
run_step "5 bench all-reduce hrm ARC gradients" 30 "$HRM" bench all-reduce --device "$DEVICE" --ranks 1 --rounds 20
run_step "5 bench all-reduce trm ARC gradients" 30 "$HRM" bench all-reduce --device "$DEVICE" --ranks 1 --rounds 20 \
    --arch trm --layers 2
grep '^all-reduce' "$LOG" | sed 's/^/note: /' >>"$SUMMARY"

say ""
say "summary: $PASSED passed, $FAILED failed, $SKIPPED skipped in $((SECONDS - START))s (log $LOG)"
echo "summary: $PASSED passed, $FAILED failed, $SKIPPED skipped in $((SECONDS - START))s" >>"$SUMMARY"
[ $FAILED -eq 0 ]
