#!/bin/bash
# The whole test suite: unit tests of every crate and the end-to-end tests, which run real pods
# (root needed) against a locally built busybox image.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
export PATH="$HOME/.cargo/bin:$PATH"
if [ ! -f target/test-images/busybox-oci.tar ]; then
  tests/images/build.sh target/test-images >/dev/null
fi
export PEAPOD_TEST_IMAGES="$PWD/target/test-images"
cargo test --workspace -- --test-threads="${PEAPOD_TEST_THREADS:-4}"
