#!/usr/bin/env bash
# CI reproduction check on the tiny profile, in a throw-away clone of this checkout:
#   1. make repro's runner (scripts/repro_lanes.py: per-model stages in parallel lanes,
#      then dvc commit and dvc repro) runs every stage offline; dvc status is clean after;
#   2. every metrics file exists with its expected keys;
#   3. dvc repro --force, one stage at a time, gives identical metrics (determinism, and
#      the lanes give what dvc repro gives);
#   4. dvc exp run -S <a stats param> re-runs only stats and the stages after it,
#      and dvc metrics diff shows the change;
#   5. dvc exp run -S model.backbone=dit runs every stage again on the DiT
#      (docs/BACKBONES.md), and its outputs say what the backbone lacks.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
export PATH="$root/.venv/bin:$PATH"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
git clone -q "$root" "$work/repo"
# Carry uncommitted changes too, so the check tests the working tree it is run from.
(cd "$root" && git diff HEAD) | (cd "$work/repo" && git apply --allow-empty 2>/dev/null || true)
cd "$work/repo"
ln -s "$root/.venv" .venv
git config user.email ci@localhost
git config user.name ci
python -m diffusion_circuits.profiles tiny --apply
git commit -qam "apply tiny profile" --allow-empty

start=$(date +%s)
python scripts/repro_lanes.py
echo "tiny repro in lanes: $(( $(date +%s) - start )) s"
status=$(dvc status)
echo "$status"
[[ "$status" == *"up to date"* ]] || { echo "dvc status not clean after repro"; exit 1; }

python - <<'PY'
import json
from pathlib import Path
expected = {
    "metrics/generate_synthetic.json": ["n_images", "marginals"],
    "metrics/prepare_natural.json": ["n_images", "source"],
    "metrics/train/synthetic-seed0.json": ["final_loss", "steps", "n_train_sources"],
    "metrics/train/natural-seed0.json": ["final_loss", "steps"],
    "metrics/evaluate/synthetic-seed0.json": ["accuracy", "accuracy_identity", "accuracy_gaussian", "margin_over_best_baseline"],
    "metrics/evaluate/natural-seed0.json": ["accuracy", "margin_over_best_baseline", "n_distinct_sources"],
    "metrics/feature_net/synthetic.json": ["heldout_accuracy", "real_vs_real"],
    "metrics/feature_net/natural.json": ["label_space", "real_vs_real"],
    "metrics/samples/synthetic-seed0.json": ["precision", "recall", "density", "coverage", "max_attribute_frequency_error"],
    "metrics/samples/natural-seed0.json": ["precision", "recall", "density", "coverage"],
    "metrics/cache/synthetic-seed0.json": ["n_images", "image_selection"],
    "metrics/analyze/synthetic-seed0.json": ["circuit_complexity", "layer_ablation_zero_impact"],
    "metrics/cross_dataset.json": ["cross_dataset_accuracy", "feature_transferability"],
    "metrics/stats.json": ["table1", "table3", "table4", "divergence"],
    "metrics/report.json": ["n_claims"],
}
for path, keys in expected.items():
    data = json.loads(Path(path).read_text())
    missing = [k for k in keys if k not in data]
    assert not missing, f"{path} lacks {missing}"
figures = sorted(Path("plots/figures").glob("*.png"))
assert len(figures) == 9, figures
assert {"natural-seed0.png", "synthetic-seed0.png"} <= {p.name for p in Path("plots/samples").glob("*.png")}
assert not any("seconds" in k for p in Path("metrics").rglob("*.json") for k in json.loads(p.read_text())), "timings belong in timings/"
assert Path("reports/replication.md").read_text().count("\n| ") >= 40
print("metrics files and outputs: ok")
PY

snapshot() { find metrics -name '*.json' | sort | xargs cat | sha256sum; }
before=$(snapshot)
dvc repro --force >/dev/null
after=$(snapshot)
[[ "$before" == "$after" ]] || { echo "metrics differ after dvc repro --force"; exit 1; }
echo "determinism: identical metrics after dvc repro --force"

git add -A && git commit -qm "tiny run" --allow-empty

# Narrow deps and params: what `dvc repro --dry` plans after one param change.
planned() {  # planned KEY VALUE -> the stage names dvc would run, sorted, one line
  python - "$1" "$2" <<'PY'
import sys, yaml
section, key = sys.argv[1].split(".")
params = yaml.safe_load(open("params.yaml"))
params[section][key] = yaml.safe_load(sys.argv[2])
open("params.yaml", "w").write(yaml.safe_dump(params, sort_keys=False))
PY
  dvc repro --dry 2>&1 | grep -oE "Running stage '[^']+'" | sed "s/Running stage //; s/'//g" | sort | tr '\n' ' '
  git checkout -q params.yaml
}
expect() {  # expect DESCRIPTION PLAN MUST_MATCH MUST_NOT_MATCH (extended regexes on the plan)
  echo "$1: $2"
  [[ -z "$3" ]] || echo "$2" | grep -qE "$3" || { echo "  expected a stage matching $3"; exit 1; }
  [[ -z "$4" ]] || ! echo "$2" | grep -qE "$4" || { echo "  unexpected stage matching $4"; exit 1; }
}
expect "runtime.num_threads=1 plans" "$(planned runtime.num_threads 1)" "" "."
expect "probe.timesteps changed plans" "$(planned probe.timesteps '[200, 800]')" \
  "evaluate@synthetic-0.*cache_activations@|cache_activations@.*evaluate@" "train@|feature_net@|samples@"
expect "a second seed plans" "$(planned train.seeds '[0, 1]')" \
  "train@natural-1.*train@synthetic-1" "train@(synthetic|natural)-0|feature_net@"
expect "samples.n_samples changed plans" "$(planned samples.n_samples 6)" \
  "samples@synthetic-0" "train@|evaluate@|analyze@"
log=$(dvc exp run -S stats.n_resamples=300 2>&1) || { echo "$log" | tail -40; echo "dvc exp run failed"; exit 1; }
ran=$(echo "$log" | grep -oE "Running stage '[^']+'" | sed "s/Running stage //; s/'//g" | sort | tr '\n' ' ')
echo "stages re-run by dvc exp run -S stats.n_resamples=300: $ran"
# evaluate reads the stats bootstrap settings for the CIs of its margins over the baselines.
[[ "$ran" == "evaluate@natural-0 evaluate@synthetic-0 figures report stats " ]] || {
  echo "unexpected stages re-ran: $ran"; exit 1; }
diff=$(dvc metrics diff)
echo "$diff" | head -20
[[ -n "$diff" ]] || { echo "dvc metrics diff shows no change"; exit 1; }

# The second backbone: every stage of the study on a tiny DiT.
start=$(date +%s)
log=$(dvc exp run -S model.backbone=dit 2>&1) || { echo "$log" | tail -40; echo "DiT experiment failed"; exit 1; }
stages=$(dvc stage list --name-only | sort | tr '\n' ' ')
ran=$(echo "$log" | grep -oE "Running stage '[^']+'" | sed "s/Running stage //; s/'//g" | sort | tr '\n' ' ')
# only the stages that read no network (the data, the sample-quality feature nets) may be skipped
for stage in $stages; do
  [[ " $ran " == *" $stage "* || "$stage" =~ ^(generate_synthetic|prepare_natural|feature_net@) ]] || {
    echo "dvc exp run -S model.backbone=dit did not run $stage"; exit 1; }
done
python - <<'PY'
import json
from pathlib import Path
assert Path("data/models/synthetic-seed0/transformer/config.json").is_file(), "no DiT checkpoint"
analyze = json.loads(Path("metrics/analyze/synthetic-seed0.json").read_text())
assert "circuit_interruption.skip" in analyze["absent_for_backbone"], analyze.get("absent_for_backbone")
assert any(k.startswith("ff.") for k in analyze["circuit_complexity_by_type"]), analyze["circuit_complexity_by_type"]
report = Path("reports/replication.md").read_text()
assert "DiTTransformer2DModel" in report and "does not exist for this backbone" in report
print("DiT arm: checkpoint, analysis and report: ok")
PY
echo "DiT arm (every model stage re-ran): $(( $(date +%s) - start )) s"
echo "CI reproduction check: ok"
