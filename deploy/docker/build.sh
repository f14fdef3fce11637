#!/usr/bin/env bash
# Builds the radix image (deploy/docker/Dockerfile) with whichever container tool works here:
# docker (with a daemon that answers), podman or buildah. Without one, or without the base images,
# it says what is missing and exits non-zero (3: no tool, 4: no base image) instead of half-trying.
#
#   deploy/docker/build.sh [cpu|cuda] [--tag NAME] [--tool docker|podman|buildah] [--dry-run]
#                          [-- more arguments for the tool's build command]
#
# Environment: RADIX_BUILD_IMAGE / RADIX_RUNTIME_IMAGE replace the variant's base images (a local
# mirror, another distribution release), CUDA_ARCHITECTURES (90) the GPUs the CUDA variant is
# compiled for, RADIX_CONTAINER_TOOLS (docker podman buildah) the tools tried, in order.
# --dry-run prints the build command and checks nothing.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
dockerfile=deploy/docker/Dockerfile

variant=cpu
tag=""
tool=""
dry_run=0
extra=()
while (($#)); do
  case $1 in
    cpu | cuda) variant=$1 ;;
    --tag) tag=${2:?--tag needs a value}; shift ;;
    --tool) tool=${2:?--tool needs a value}; shift ;;
    --dry-run) dry_run=1 ;;
    --) shift; extra=("$@"); break ;;
    -h | --help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "build.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
  esac
  shift
done

case $variant in
  cpu)
    build_image=${RADIX_BUILD_IMAGE:-debian:bookworm}
    runtime_image=${RADIX_RUNTIME_IMAGE:-debian:bookworm-slim}
    build_args=(--build-arg RADIX_CUDA=OFF --build-arg DEFAULT_DEVICE=cpu)
    ;;
  cuda)
    build_image=${RADIX_BUILD_IMAGE:-nvidia/cuda:13.0.0-devel-ubuntu24.04}
    runtime_image=${RADIX_RUNTIME_IMAGE:-nvidia/cuda:13.0.0-runtime-ubuntu24.04}
    build_args=(--build-arg RADIX_CUDA=ON --build-arg DEFAULT_DEVICE=cuda:0
                --build-arg "CUDA_ARCHITECTURES=${CUDA_ARCHITECTURES:-90}")
    ;;
esac
build_args+=(--build-arg "BUILD_IMAGE=$build_image" --build-arg "RUNTIME_IMAGE=$runtime_image")
tag=${tag:-radix:$variant}

# Why each candidate tool cannot be used; the first usable one wins.
reasons=()
usable() {
  local t=$1 out
  if ! command -v "$t" >/dev/null; then
    reasons+=("$t: not installed")
    return 1
  fi
  # `docker` is often only the client; `info` fails when no daemon answers.
  if ! out=$("$t" info 2>&1 >/dev/null); then
    reasons+=("$t: installed, but '$t info' fails: $(echo "$out" | grep -v '^$' | head -n 1)")
    return 1
  fi
  return 0
}

if ((!dry_run)); then
  if [[ -n $tool ]]; then
    usable "$tool" || { echo "build.sh: cannot build: ${reasons[0]}" >&2; exit 3; }
  else
    for t in ${RADIX_CONTAINER_TOOLS:-docker podman buildah}; do
      if usable "$t"; then tool=$t; break; fi
    done
    if [[ -z $tool ]]; then
      echo "build.sh: cannot build the $variant image: no usable container tool" >&2
      printf '  %s\n' "${reasons[@]}" >&2
      echo "  (Debian: apt-get install podman or buildah; or start a Docker daemon)" >&2
      exit 3
    fi
  fi
  for image in "$build_image" "$runtime_image"; do
    if [[ $tool == buildah ]]; then
      have() { buildah inspect --type image "$1" >/dev/null 2>&1; }
    else
      have() { "$tool" image inspect "$1" >/dev/null 2>&1; }
    fi
    if ! have "$image" && ! "$tool" pull "$image" >/dev/null 2>&1; then
      echo "build.sh: cannot build the $variant image: base image '$image' is neither here nor" \
        "pullable with $tool; load it ($tool load / $tool pull from a mirror) or name another" \
        "with RADIX_BUILD_IMAGE / RADIX_RUNTIME_IMAGE" >&2
      exit 4
    fi
  done
fi
tool=${tool:-docker}

cmd=("$tool")
case $tool in
  docker) cmd+=(build) ;;  # BuildKit reads deploy/docker/Dockerfile.dockerignore itself
  # Docker's image format: the OCI format has no HEALTHCHECK, and podman/buildah would drop it.
  podman) cmd+=(build --format docker --ignorefile "$dockerfile.dockerignore") ;;
  buildah) cmd+=(bud --format docker --ignorefile "$dockerfile.dockerignore") ;;
  *) echo "build.sh: unknown tool '$tool' (docker, podman or buildah)" >&2; exit 2 ;;
esac
cmd+=(-f "$dockerfile" -t "$tag" "${build_args[@]}" "${extra[@]}" .)

echo "build.sh: in $root: ${cmd[*]}" >&2
((dry_run)) && exit 0
cd "$root"
"${cmd[@]}"
echo "build.sh: built $tag; try: $tool run --rm -p 3000:3000 -e RADIX_MODEL=demo $tag" >&2
