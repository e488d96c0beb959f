#!/bin/bash
# Installs what building and testing peapod needs on Debian 12: the C bits libcontainer links
# (libseccomp), the tools that build the busybox test image (busybox-static, umoci, skopeo, jq),
# nftables (the agent runs `nft` for its NAT table) and iproute2 (tests inspect links), kubectl
# (Debian's kubernetes-client, only when no kubectl is on the PATH: the end-to-end tests drive
# the real kubectl), and a Rust toolchain when none is installed.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
packages=(busybox-static umoci skopeo jq libseccomp-dev pkg-config gcc make curl ca-certificates iproute2 nftables docker-registry apache2-utils python3-kubernetes)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
command -v kubectl >/dev/null 2>&1 || missing+=(kubernetes-client)
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi
if ! command -v cargo >/dev/null 2>&1; then
  [ -x "$HOME/.cargo/bin/cargo" ] || curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal >/dev/null
fi
