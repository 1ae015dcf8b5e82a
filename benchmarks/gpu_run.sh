#!/bin/bash
# One prepared benchmark run on a GPU machine, in this order:
#   1. scoring throughput at 150 px (the HLA cutout size of the paper's scale claim), alone on the GPU;
#   2. the FixMatch step and scoring against the bare network (benchmarks/bench_training.py);
#   3. the protocol with every method side by side (probe, ensemble, ensemble_rot, fixmatch, both),
#      3 seeds, one process per set and anomaly class sharing the GPU, stopped after PROTOCOL_SECONDS
#      (each process keeps its rows after every seed), then merged into one table.
# Usage: bash benchmarks/gpu_run.sh OUTPUT_DIR [PROTOCOL_SECONDS]
# Environment: PARTS (default "throughput training protocol"), SEEDS (default "0 1 2"), METHODS, N_SCORE,
# SPECS (protocol processes separated by ";", each "set [class|-] [seeds...]", default: every set and class),
# THROUGHPUT_ARGS (extra options of `benchmark --suite throughput`, e.g. the storage layout of the scored set when
# the benchmark has such an option; the suite always measures the read and write stages of float32-lzf and the
# fast layout side by side at 150 px).
# Writes at most 7 files into OUTPUT_DIR: machine.txt, throughput.json, throughput.log, training.log,
# protocol.ecsv, protocol_summary.ecsv, protocol.log.
set -u
OUT=${1:?usage: gpu_run.sh OUTPUT_DIR [PROTOCOL_SECONDS]}
BUDGET=${2:-360}
PY=${PYTHON:-python3}
N_SCORE=${N_SCORE:-8192}
SEEDS=${SEEDS:-0 1 2}
PARTS=${PARTS:-throughput training protocol}
METHODS=${METHODS:-probe ensemble ensemble_rot fixmatch both}
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
RUNS=$(mktemp -d /tmp/amast_gpu_runs.XXXX)
mkdir -p "$OUT"
{
  date -u; uname -m; nproc; free -g | head -2
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1
  $PY -c "import torch, timm, numpy, astropy; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(),
  'timm', timm.__version__, 'numpy', numpy.__version__, 'astropy', astropy.__version__)" 2>&1
} > "$OUT/machine.txt"
cat "$OUT/machine.txt"

if [[ $PARTS == *throughput* ]]; then
echo "== throughput"
# shellcheck disable=SC2086
$PY -m anomalymatch_astro benchmark --suite throughput --image-size 150 --batch-size 1024 --workers 8 \
    --n "$N_SCORE" --skip-memory --skip-dask --no-progress ${THROUGHPUT_ARGS:-} -o "$RUNS/throughput" \
    > "$OUT/throughput.log" 2>&1
cp "$RUNS/throughput/throughput.json" "$OUT/" 2>/dev/null
tail -n 24 "$OUT/throughput.log"
fi

if [[ $PARTS == *training* ]]; then
echo "== training step"
timeout 120 $PY benchmarks/bench_training.py --device cuda --image-size 64 --steps 20 --n-score 8192 \
    --score-batch 1024 > "$OUT/training.log" 2>&1
tail -n 15 "$OUT/training.log"
fi
[[ $PARTS == *protocol* ]] || exit 0

echo "== protocol ($BUDGET s)"
DEFAULT_SPECS="digits 0;digits 3;digits 8;morphology spiral;morphology edge_on_disk;morphology smooth_cigar"
DEFAULT_SPECS+=";morphology smooth_round;mock_survey;lens"
IFS=";" read -r -a SPECS <<< "${SPECS:-$DEFAULT_SPECS}"
for spec in "${SPECS[@]}"; do
  read -r set cls seeds <<< "$spec"
  [[ $cls == "-" ]] && cls=""
  name="${set}_${cls:-all}_${seeds:-$SEEDS}"; name=${name// /-}
  # shellcheck disable=SC2086
  timeout "$BUDGET" $PY -m anomalymatch_astro -v benchmark --suite protocol --sets "$set" ${cls:+--classes "$cls"} \
      --methods $METHODS --seeds ${seeds:-$SEEDS} --no-progress -o "$RUNS/$name" > "$RUNS/$name.log" 2>&1 &
done
wait
for log in "$RUNS"/*.log; do
  echo "---- $(basename "$log" .log)"; grep -E "AUROC|Error|error|Traceback" "$log" | tail -n 40
done > "$OUT/protocol.log" 2>&1
$PY benchmarks/merge_protocol.py "$OUT" "$RUNS"/*/ 2>&1 | tee -a "$OUT/protocol.log"
