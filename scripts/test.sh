#!/bin/bash
# The whole test suite: unit tests of every crate and the end-to-end tests, which run real pods
# (root needed) against a locally built busybox image. Every test binary runs even when one
# fails; ends with one summary line.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
export PATH="$HOME/.cargo/bin:$PATH"
if [ ! -f target/test-images/busybox-oci.tar ]; then
  tests/images/build.sh target/test-images >/dev/null
fi
export PEAPOD_TEST_IMAGES="$PWD/target/test-images"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo test --workspace --lib --bins --tests --no-fail-fast -- --test-threads="${PEAPOD_TEST_THREADS:-4}" 2>&1 | tee "$log" || status=$?
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed;?$/) p += $(i-1); if ($i ~ /^failed;?$/) f += $(i-1) } }
     END { printf "%d passed, %d failed\n", p, f }' "$log"
exit "$status"
