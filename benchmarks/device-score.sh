#!/usr/bin/env bash
# Issue 18's GPU rows in one go, for a device machine lent for a few minutes (one H100/H200, 16
# cores): CLIP only and every default scorer on the device (ViT-B-32 fp16, then tiny-clip), the
# ceilings, each scorer alone on the GPU. Results as JSON under ${OUT:-.}; the shards are
# generated first (about a minute on 16 cores) and reused by a rerun.
#   OUT=/tmp/out bash benchmarks/device-score.sh
set -euo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-.}
python=${PYTHON:-.venv/bin/python}
export HF_HUB_OFFLINE=1 NO_ALBUMENTATIONS_UPDATE=1
nvidia-smi --query-gpu=name,memory.total --format=csv | tee "$out/gpu.txt"
timeout 420 "$python" benchmarks/score.py --device cuda --images 40000 --shard-size 10000 \
    --models ViT-B-32,tiny-clip --workers 15 --batch-size 512 --ceilings \
    --full-images 10000 --full-faces mtcnn-torch --naive-images 200 --detector-images 512 \
    --ocr-images 0 --floor-images 1000 --json "$out/score-gpu.json" 2>&1 | tee "$out/score-gpu.log"
