#!/usr/bin/env bash
# Prints, one per line and sorted, the Debian/Ubuntu packages that hold the shared libraries a
# binary loads (ldd, then dpkg -S). The image's build stage runs it on the radix it just built and
# the runtime stage installs exactly that list, so the runtime image carries the libraries radix
# needs and no -dev package, on whichever distribution the base images are.
#
#   runtime-packages.sh BINARY [ALLOWED_MISSING_REGEX]
#
# A library ldd cannot find is an error, unless its name matches ALLOWED_MISSING_REGEX: the CUDA
# variant passes the driver's libraries (libcuda.so.1, ...), which the NVIDIA container runtime
# mounts into the container at run time and which are absent from build machines.
set -euo pipefail

bin=${1:?usage: runtime-packages.sh BINARY [ALLOWED_MISSING_REGEX]}
allowed_missing=${2:-}
[[ -x $bin ]] || { echo "runtime-packages: $bin is not an executable" >&2; exit 2; }
command -v dpkg-query >/dev/null || { echo "runtime-packages: needs dpkg (a Debian/Ubuntu image)" >&2; exit 2; }

# dpkg knows a file by the path its package shipped; with merged /usr that may be /lib/... or
# /usr/lib/..., and ldd may print a path through a symlink (Debian's OpenBLAS alternatives).
owner_of() {
  local path=$1 real candidates=()
  real=$(readlink -f "$path")
  candidates=("$path" "$real")
  for p in "$path" "$real"; do
    case $p in
      /usr/lib/*) candidates+=("${p#/usr}") ;;
      /lib/*) candidates+=("/usr$p") ;;
    esac
  done
  for c in "${candidates[@]}"; do
    if out=$(dpkg-query -S "$c" 2>/dev/null); then
      # "pkg:arch: /path" or "pkg1, pkg2: /path" (a path several packages divert or share)
      echo "${out%%: *}" | tr ',' '\n' | sed 's/^ *//; s/:.*$//' | head -n 1
      return 0
    fi
  done
  return 1
}

missing=()
unowned=()
packages=()
while read -r line; do
  # "libx.so.1 => /path/libx.so.1 (0x...)", "libx.so.1 => not found", "/lib64/ld-linux... (0x...)"
  if [[ $line == *"=> not found"* ]]; then
    name=${line%% *}
    if [[ -n $allowed_missing && $name =~ $allowed_missing ]]; then continue; fi
    missing+=("$name")
    continue
  fi
  if [[ $line == *"=> /"* ]]; then
    path=${line#*=> }
    path=${path%% (*}
  elif [[ $line == /* ]]; then
    path=${line%% (*}
  else
    continue  # linux-vdso.so.1 and the like: no file
  fi
  if pkg=$(owner_of "$path"); then
    packages+=("$pkg")
  else
    unowned+=("$path")
  fi
done < <(ldd "$bin")

if ((${#missing[@]})); then
  echo "runtime-packages: ldd cannot find ${missing[*]} for $bin" >&2
  exit 1
fi
if ((${#unowned[@]})); then
  # A library outside any package (a local build, an unpacked .deb) cannot be installed by name.
  echo "runtime-packages: no package owns ${unowned[*]}" >&2
  exit 1
fi
printf '%s\n' "${packages[@]}" | sort -u
