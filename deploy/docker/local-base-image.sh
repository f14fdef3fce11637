#!/usr/bin/env bash
# Makes the CPU variant's Debian base images locally, for a machine that reaches Debian's package
# mirror but no container registry: debootstrap a minimal Debian into a temporary folder and
# import it as debian:RELEASE and debian:RELEASE-slim, the names deploy/docker/build.sh cpu uses.
#
#   deploy/docker/local-base-image.sh [--tool podman|docker|buildah] [RELEASE (bookworm)] [MIRROR]
#
# Needs root, debootstrap (apt-get install debootstrap) and a container tool. The CUDA variant's
# bases (NVIDIA's CUDA images) cannot be made this way.
set -euo pipefail

tool=""
if [[ ${1:-} == --tool ]]; then tool=${2:?--tool needs a value}; shift 2; fi
release=${1:-bookworm}
mirror=${2:-http://deb.debian.org/debian}
if [[ -z $tool ]]; then
  for t in podman docker buildah; do
    if command -v "$t" >/dev/null && "$t" info >/dev/null 2>&1; then tool=$t; break; fi
  done
fi
[[ -n $tool ]] || { echo "local-base-image: no usable podman, docker or buildah" >&2; exit 3; }
command -v debootstrap >/dev/null || { echo "local-base-image: needs debootstrap (apt-get install debootstrap)" >&2; exit 3; }
[[ $(id -u) == 0 ]] || { echo "local-base-image: debootstrap needs root" >&2; exit 3; }

rootfs=$(mktemp -d)
trap 'rm -rf "$rootfs"' EXIT
debootstrap --variant=minbase "$release" "$rootfs" "$mirror" >&2
# What the official images also drop: package lists and caches.
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb

name=docker.io/library/debian
if [[ $tool == buildah ]]; then
  ctr=$(buildah from scratch)
  mnt=$(buildah mount "$ctr")
  tar -C "$rootfs" -c . | tar -C "$mnt" -x
  buildah umount "$ctr" >/dev/null
  buildah config --cmd /bin/bash "$ctr"
  buildah commit "$ctr" "$name:$release" >/dev/null
  buildah rm "$ctr" >/dev/null
  buildah tag "$name:$release" "$name:$release-slim"
else
  tar -C "$rootfs" -c . | "$tool" import --change 'CMD ["/bin/bash"]' - "$name:$release" >/dev/null
  "$tool" tag "$name:$release" "$name:$release-slim"
fi
echo "local-base-image: $name:$release and $name:$release-slim made with $tool from $mirror" >&2
