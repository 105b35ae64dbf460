#!/usr/bin/env bash
# Timing of the multi-pass DMFT and simulator (issue 10's benchmarks): wall time and peak memory of
# `plateau dmft` over particles S and steps T (p = k = 2, erf committee: closed-form risk, so the
# time is the particle scheme's), the ReLU/tanh-link case of dmft.md §2 (its risk goes through the
# quadrature route), and `plateau simulate` at α = 5, d = 2500.
#   bash scripts/dmft-timing.sh            (after `swift build -c release`)
set -euo pipefail
BIN=${BIN:-.build/release/plateau}
DIR=$(mktemp -d)
trap 'rm -rf "$DIR"' EXIT
spec() {  # $1 student/teacher block, $2 alpha, $3 steps, $4 particles
  cat > "$DIR/spec.yaml" <<SPEC
$1
training: {protocol: multipass, learningRate: 0.2, alpha: $2, steps: $3, particles: $4}
init: orthogonal
SPEC
}
ERF='teacher: {k: 2, activation: erf}
student: {p: 2, activation: erf, secondLayer: [0.70710678118654752, -0.70710678118654752]}'
RELU='teacher: {k: 2, target: "tanh(z1 + z2^3 - 3*z2)"}
student: {p: 2, activation: relu, secondLayer: [0.70710678118654752, -0.70710678118654752]}'
measure() {  # label, command...
  local label=$1; shift
  /usr/bin/time -f "%e %M" -o "$DIR/time" "$@" > /dev/null
  read -r seconds kb < "$DIR/time"
  printf "%-40s %8.2f s %8.0f MB\n" "$label" "$seconds" "$((kb / 1024))"
}
echo "case                                       wall      peak RSS"
for S in 250000 500000 1000000 2000000 4000000; do
  spec "$ERF" 3 7 $S; measure "dmft erf S=$S T=7" "$BIN" dmft --spec "$DIR/spec.yaml" --out "$DIR/out" --quiet
done
for T in 3 14 28; do
  spec "$ERF" 3 $T 1000000; measure "dmft erf S=1000000 T=$T" "$BIN" dmft --spec "$DIR/spec.yaml" --out "$DIR/out" --quiet
done
spec "$RELU" 3 7 1000000; measure "dmft relu/tanh-link S=1000000 T=7" "$BIN" dmft --spec "$DIR/spec.yaml" --out "$DIR/out" --quiet
spec "$RELU" 3 7 64; measure "  (its risk scoring alone: S=64)" "$BIN" dmft --spec "$DIR/spec.yaml" --out "$DIR/out" --quiet
spec "$RELU" 5 6 1000000; measure "simulate α=5 d=2500, 2 seeds (2 cores)" "$BIN" simulate --spec "$DIR/spec.yaml" --dimension 2500 --seeds 2 --out "$DIR/out" --quiet
