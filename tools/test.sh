#!/usr/bin/env bash
# Quick start, command 2: build the environment (once), then run every test, offline:
# the notebooks' own tests (nbdev_test, slow cells included), the end-to-end notebook under
# papermill with CI parameters, then pytest (last, so its closing line counts the tests).
set -eo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
command -v chromium >/dev/null || { apt-get install -y -q chromium >/dev/null 2>&1 || echo "stylefit: could not install chromium; the browser tests (tests/test_app.py) will fail" >&2; }
cd "$STYLEFIT_ROOT"
echo "== nbdev_test"
nbdev_test --flags slow --n_workers 2
echo "== papermill: nbs/10_pipeline.ipynb with CI parameters"
mkdir -p runs/ci
papermill nbs/10_pipeline.ipynb runs/ci/10_pipeline.ipynb --cwd nbs -p max_steps 40 -p out_dir ../runs/ci/pipeline --log-level WARNING
grep -q '"injected-parameters"' runs/ci/10_pipeline.ipynb || { echo "papermill ignored the parameters: the notebook lost its 'parameters' tag" >&2; exit 1; }
python - <<'PY'
import json; r = json.load(open('runs/ci/pipeline/results.json'))
steps = r['config']['train']['max_steps']; assert steps == 40, f'papermill parameter not applied: max_steps={steps}'
print(f"papermill run: max_steps={steps}, perplexity {r['ppl_before']:.1f} -> {r['ppl_after']:.1f}")
PY
jupyter nbconvert --to html --log-level WARN runs/ci/10_pipeline.ipynb --output-dir runs/ci
echo "== pytest"
set +e
python -m pytest -q tests "$@"
code=$?
[ $code -eq 5 ] && echo "pytest collected no tests: failing" >&2
exit $code
