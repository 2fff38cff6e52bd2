#!/usr/bin/env bash
# Mutation testing (mutmut 3, the `dev` extra) of the model wiring, the training step and the metrics.
#
#   scripts/mutation.sh [MODULE ...] [-- MUTMUT_RUN_ARGS]   MODULE: poster_v2 | mpa_fer | step | metrics (default: all)
#
# Each module runs in a scratch copy of the repository ($MUTATION_WORK/<module>, default /tmp/ferkit-mutation), so
# the working tree is never mutated, against only the test files that exercise it (pytest -x, no xdist). The
# process is niced (MUTATION_NICE, default 19) and uses MUTATION_JOBS workers (default 1). MUTATION_SRC runs on
# another checkout (e.g. an exported older commit, to measure a score before a change). A fresh run starts unless
# MUTATION_KEEP=1 (then `-- NAME ...` re-runs only the named mutants, e.g. the survivors after a test was added).
# Prints the per-file counts and the score (killed + timeout) / (mutants with tests); the surviving mutants are
# listed by `cd $MUTATION_WORK/<module> && mutmut results` and shown by `mutmut show NAME`.
# Equivalent mutants (no plausible bug, no test can kill them) are explained in docs/testing.md.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
src=${MUTATION_SRC:-$repo}
work_root=${MUTATION_WORK:-${TMPDIR:-/tmp}/ferkit-mutation}
py="$repo/.venv/bin/python"
renice -n "${MUTATION_NICE:-19}" $$ >/dev/null

declare -A MUTATE=(
  [poster_v2]="ferkit/models/poster_v2/*"
  [mpa_fer]="ferkit/models/mpa_fer/model.py ferkit/models/mpa_fer/losses.py ferkit/models/mpa_fer/encoders.py"
  [step]="ferkit/train/step.py"
  [metrics]="ferkit/evaluation/metrics.py"
)
declare -A TESTS=(
  [poster_v2]="tests/test_poster_v2_oracles.py tests/test_poster_v2.py tests/test_poster_v2_checkpoints.py
               tests/test_poster_v2_open.py tests/test_poster_v2_vit_init.py"
  [mpa_fer]="tests/mpa_fer/test_mpa_oracles.py tests/mpa_fer/test_mpa_losses.py tests/mpa_fer/test_mpa_model.py
             tests/mpa_fer/test_mpa_checkpoint.py tests/mpa_fer/test_mpa_prototypes.py"
  [step]="tests/test_train_step.py tests/test_engine_units.py"
  [metrics]="tests/test_engine_units.py tests/test_metrics.py"
)

modules=()
run_args=()
while [ $# -gt 0 ]; do
  case $1 in
    --) shift; run_args=("$@"); break ;;
    *) [ -n "${MUTATE[$1]:-}" ] || { echo "unknown module $1 (one of: ${!MUTATE[*]})" >&2; exit 2; }
       modules+=("$1"); shift ;;
  esac
done
[ ${#modules[@]} -gt 0 ] || modules=(metrics step mpa_fer poster_v2)

for m in "${modules[@]}"; do
  work="$work_root/$m"
  mkdir -p "$work"
  [ "${MUTATION_KEEP:-0}" = 1 ] || rm -rf "$work/mutants"
  rm -rf "$work/ferkit" "$work/tests"
  cp -a "$src/ferkit" "$src/tests" "$src/pyproject.toml" "$work/"
  find "$work/ferkit" "$work/tests" -name __pycache__ -prune -exec rm -rf {} +
  tests=()
  for t in ${TESTS[$m]}; do [ -f "$work/$t" ] && tests+=("$t"); done
  {
    echo "[mutmut]"
    echo "source_paths = ferkit"
    echo "only_mutate ="; for g in ${MUTATE[$m]}; do echo "    $g"; done
    echo "pytest_add_cli_args_test_selection ="; for t in "${tests[@]}"; do echo "    $t"; done
    echo "pytest_add_cli_args ="; for a in -p no:xdist -p no:cacheprovider; do echo "    $a"; done
    echo "process_isolation = forkserver"   # torch is not fork-safe after use
    echo "use_git_change_detection = false"
  } >"$work/setup.cfg"
  echo "== $m: mutating ${MUTATE[$m]}; tests: ${tests[*]}" >&2
  (cd "$work" && "$py" -m mutmut run --max-children "${MUTATION_JOBS:-1}" "${run_args[@]}" >"$work/run.log" 2>&1) ||
    { tail -40 "$work/run.log" >&2; exit 1; }
  (cd "$work" && "$py" "$repo/scripts/mutation_report.py" "$m")
done
