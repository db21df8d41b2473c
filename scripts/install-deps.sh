#!/usr/bin/env bash
# Installs what digcl needs to build and test. Idempotent and quiet when
# everything is present. Debian/Ubuntu: apt-get; elsewhere it prints the
# equivalent dnf / pacman / brew command.
set -euo pipefail

DEBIAN_PACKAGES=(
  cmake make gcc pkg-config
  ocl-icd-opencl-dev opencl-c-headers ocl-icd-libopencl1 pocl-opencl-icd clinfo
  libclblast-dev libpng-dev zlib1g-dev libcjson-dev libxxhash-dev libcmocka-dev
  libturbojpeg0-dev libstb-dev libcairo2-dev fonts-dejavu-core libzip-dev libopenblas-dev
  libopenmpi-dev openmpi-bin
  dataset-fashion-mnist
)
# Optional: the PyTorch reference that regenerates the golden fixtures.
DEBIAN_OPTIONAL=(python3-torch python3-pil)

missing_debian_packages() {
  local package
  for package in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
      printf '%s\n' "$package"
    fi
  done
}

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "install-deps.sh: need root (or sudo) to run: $*" >&2; exit 1; fi
}

install_debian() {
  local missing
  mapfile -t missing < <(missing_debian_packages "${DEBIAN_PACKAGES[@]}")
  if [ "${DIGCL_WITH_TORCH:-0}" = "1" ]; then
    mapfile -t -O "${#missing[@]}" missing < <(missing_debian_packages "${DEBIAN_OPTIONAL[@]}")
  fi
  [ "${#missing[@]}" -eq 0 ] && return 0
  echo "install-deps.sh: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get update -qq
  as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

print_other() {
  cat <<'MSG'
install-deps.sh: this is not a Debian/Ubuntu system; install the equivalents:
  Fedora: sudo dnf install cmake gcc make pkgconf-pkg-config ocl-icd-devel opencl-headers pocl clinfo \
            clblast-devel libpng-devel zlib-devel cjson-devel xxhash-devel libcmocka-devel \
            turbojpeg-devel stb-devel cairo-devel dejavu-sans-fonts libzip-devel openblas-devel openmpi-devel
  Arch:   sudo pacman -S cmake gcc make pkgconf ocl-icd opencl-headers pocl clinfo clblast libpng zlib \
            cjson xxhash cmocka libjpeg-turbo stb cairo ttf-dejavu libzip openblas openmpi
  macOS:  brew install cmake pkg-config clblast libpng cjson xxhash cmocka jpeg-turbo cairo libzip openblas open-mpi   (OpenCL ships with macOS)
MSG
}

if command -v apt-get >/dev/null 2>&1 && command -v dpkg-query >/dev/null 2>&1; then
  install_debian
else
  print_other
fi
