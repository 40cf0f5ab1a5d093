#!/usr/bin/env bash
# Quick start, command 1: build the environment (once), then fine-tune the bundled SmolLM2-135M on
# the sample blog and write runs/demo/ (results.json, report.md, report.html, loss_curves.png).
# Extra arguments go to `stylefit demo` (e.g. --max_steps 40, --use_lora true, or --config my_settings.yaml).
set -eo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$STYLEFIT_ROOT"
stylefit demo "$@"
