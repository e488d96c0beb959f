#!/bin/bash
# Installs what building and testing peapod needs on Debian 12: the C bits libcontainer links
# (libseccomp), the tools that build the busybox test image (busybox-static, umoci, skopeo, jq),
# nftables (the agent runs `nft` for its NAT table and Service rules), conntrack (the service
# proxy clears a removed UDP endpoint's flows) and iproute2 (tests inspect links), kubectl
# (Debian's kubernetes-client, only when no kubectl is on the PATH: the end-to-end tests drive
# the real kubectl), Debian's kubectl 1.20 extracted to /opt/peapod/kubectl-1.20 beside any other
# (tests/e2e_kubectl_1_20.rs checks that it works unchanged), chromium and chromium-driver (the
# topology page's browser tests, crates/peapod/tests/e2e/ui_page.rs) with axe-core (their
# accessibility checks), and a Rust toolchain when none is installed.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
packages=(busybox-static umoci skopeo jq libseccomp-dev pkg-config gcc make curl ca-certificates iproute2 nftables conntrack docker-registry apache2-utils python3-kubernetes chromium chromium-driver)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
command -v kubectl >/dev/null 2>&1 || missing+=(kubernetes-client)
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi
kubectl_1_20=/opt/peapod/kubectl-1.20
has_candidate() { apt-cache policy kubernetes-client 2>/dev/null | grep 'Candidate: [0-9]' >/dev/null; }
if [ ! -x "$kubectl_1_20/usr/bin/kubectl" ]; then
  has_candidate || apt-get update -q >/dev/null
  if has_candidate; then
    download=$(mktemp -d)
    chown _apt "$download" 2>/dev/null || true # apt downloads as _apt when it can
    (cd "$download" && apt-get download -q kubernetes-client >/dev/null)
    mkdir -p "$kubectl_1_20"
    dpkg-deb -x "$download"/kubernetes-client_*.deb "$kubectl_1_20"
    rm -rf "$download"
  fi
fi
if ! command -v cargo >/dev/null 2>&1; then
  [ -x "$HOME/.cargo/bin/cargo" ] || curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal >/dev/null
fi
# axe-core, the accessibility engine the topology page's browser tests run in the page
# (ui_page.rs): one script from the npm registry, pinned by its checksum.
axe_version=4.10.3
axe_sha512=Xm7bpRXnDSX2YE2YFfBk2FnF0ep6tmG7xPh8iHee8MIcrgq762Nkce856dYtJYLkuIoYZvGfTs/PbZhideTcEg==
axe_dir=/opt/peapod/axe-core-$axe_version
if [ ! -f "$axe_dir/axe.min.js" ]; then
  download=$(mktemp -d)
  curl -sSf -o "$download/axe.tgz" "https://registry.npmjs.org/axe-core/-/axe-core-$axe_version.tgz"
  [ "$(openssl dgst -sha512 -binary "$download/axe.tgz" | base64 -w0)" = "$axe_sha512" ] || {
    echo "axe-core-$axe_version.tgz does not match its published checksum" >&2
    exit 1
  }
  tar -xzf "$download/axe.tgz" -C "$download" package/axe.min.js
  mkdir -p "$axe_dir"
  mv "$download/package/axe.min.js" "$axe_dir/axe.min.js"
  rm -rf "$download"
fi
