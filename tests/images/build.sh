#!/bin/bash
# Builds the busybox test image from Debian's busybox-static, in the three forms peapod loads:
#   OUT/busybox-oci.tar     OCI image layout archive (umoci), named docker.io/library/busybox:latest
#   OUT/busybox-docker.tar  `docker save` archive (skopeo), tagged busybox:latest
#   OUT/busybox-rootfs.tar  a plain root filesystem tarball, for `peapod import`
# Usage: tests/images/build.sh OUT_DIR
set -euo pipefail
out=${1:?usage: build.sh OUT_DIR}
mkdir -p "$out"
out=$(cd "$out" && pwd)
busybox=$(command -v busybox)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

rootfs="$work/rootfs"
mkdir -p "$rootfs"/{bin,etc,tmp,var/www,root,proc,sys,dev}
cp "$busybox" "$rootfs/bin/busybox"
for applet in $("$rootfs/bin/busybox" --list); do
  [ "$applet" = busybox ] || ln -sf busybox "$rootfs/bin/$applet"
done
chmod 1777 "$rootfs/tmp"
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\napp:x:1000:1000:app:/tmp:/bin/sh\n' > "$rootfs/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\napp:x:1000:\n' > "$rootfs/etc/group"
tar -C "$rootfs" -cf "$out/busybox-rootfs.tar" .

layout="$work/layout"
umoci init --layout "$layout"
umoci new --image "$layout:latest"
umoci unpack --rootless --image "$layout:latest" "$work/bundle" >/dev/null 2>&1 || umoci unpack --image "$layout:latest" "$work/bundle"
cp -a "$rootfs/." "$work/bundle/rootfs/"
umoci repack --image "$layout:latest" "$work/bundle"
umoci config --image "$layout:latest" --config.env PATH=/bin --config.cmd sh \
  --author peapod-tests --os linux --architecture amd64
# containerd's name annotation, so `load` keeps the full reference
index="$layout/index.json"
jq '.manifests[0].annotations["io.containerd.image.name"] = "docker.io/library/busybox:latest"' "$index" > "$work/index.json"
mv "$work/index.json" "$index"
tar -C "$layout" -cf "$out/busybox-oci.tar" .

rm -f "$out/busybox-docker.tar"
skopeo --insecure-policy copy -q "oci:$layout:latest" "docker-archive:$out/busybox-docker.tar:busybox:latest"
echo "test images in $out"
