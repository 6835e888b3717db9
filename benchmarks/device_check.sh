#!/usr/bin/env bash
# Every GPU check of issue 14 as one prepared run, sized for a lent device's 15 minutes (a start of a minute
# or two, then one command of at most 10): the GPU benchmark's parts, the compiled steps on the card, and
# `pytest -m gpu`, each under its own time limit so that a slow part cannot eat the others' time. Each part's
# output goes to its own log in $OUT (a lent machine sends back at most 8 files); benchmarks/gpu.py prints
# its rows as they finish, so a part cut by its limit still leaves what it measured.
#
#   bash benchmarks/device_check.sh wheels   # here, once: the wheels the device image lacks, into .whl/
#   bash benchmarks/device_check.sh          # there: run with carry [".whl"] and timeout_s 600 (the parts'
#                                            # limits add up to 560 s, the install takes some 20)
#
# The device image has NumPy, SciPy, SymPy, matplotlib, hypothesis, CuPy, PyTorch, JAX and diffrax
# (/work/.library/device/KINDS.md); it lacks array-api-compat, array-api-strict, cvxpy (and its solvers
# clarabel and osqp; scs, 43 MB, is left out: cvxpy loads its solvers lazily and the claims use clarabel)
# and latex2mathml. The project is put on the path through links, without a build (its build backend needs
# a newer setuptools than the image may hold).
set -u
cd "$(dirname "$0")/.."
WHEELS=(array-api-compat array-api-strict cvxpy clarabel osqp latex2mathml)

if [ "${1:-}" = wheels ]; then
  rm -rf .whl && mkdir -p .whl
  # the device's python3 is CPython 3.12 on x86_64 Linux
  exec python3 -m pip download --quiet --only-binary=:all: --no-deps --implementation cp --python-version 3.12 \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d .whl "${WHEELS[@]}"
fi

out=${OUT:-device-out}
mkdir -p "$out"
site=/tmp/solvable-site
rm -rf "$site"
python3 -m pip install --quiet --no-deps --target "$site" .whl/*.whl >"$out/setup.log" 2>&1
mkdir -p "$site/solvable"
cp -rs "$PWD/solvable/." "$site/solvable/"
for layer in sims theory proofs_checks figures; do ln -sfn "$PWD/$layer" "$site/solvable/$layer"; done
# PYTHONSAFEPATH: the working directory is not put first on the path, where the checkout's own solvable/
# (without its layers) would hide the linked package. PYTHONUNBUFFERED: a part cut by its limit keeps the
# rows it printed.
export PYTHONPATH="$site" PYTHONSAFEPATH=1 PYTHONUNBUFFERED=1 MPLBACKEND=Agg PYTHONHASHSEED=0

part() {  # part NAME SECONDS COMMAND...: one check, its own log and limit
  local name=$1 limit=$2
  shift 2
  local start=$SECONDS
  { echo "\$ $*"; timeout "$limit" "$@"; echo "exit $? after $((SECONDS - start)) s (limit $limit s)"; } \
    >"$out/$name.log" 2>&1
}

part info 30 bash -c 'nvidia-smi -L; python3 -m solvable info'
cat "$out/setup.log" >>"$out/info.log" && rm "$out/setup.log"
# issue 14's targets first: the flow at B = 64 against JAX + diffrax, then GD's share of the FP64 matmul
part flow64 130 python3 benchmarks/gpu.py --part flow --batches 64
part gd 90 python3 benchmarks/gpu.py --part gd
part compiled 70 python3 benchmarks/compiled_steps.py --device cuda --quick
part flow1024 80 python3 benchmarks/gpu.py --part flow --batches 1024 --coordinates reduced
# the target "verify --quick on CuPy no slower than on NumPy", on the claim the issue measured
part claim 50 python3 benchmarks/gpu.py --part claim
part gpu_tests 110 python3 -m pytest -q -p no:cacheprovider -m gpu -x
