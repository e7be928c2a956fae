#!/usr/bin/env bash
# Install the Debian packages mobconv's build and tests need, if missing.
# Idempotent: does nothing when everything is present. Needs root (or sudo).
set -euo pipefail
PACKAGES=(
  cmake
  g++
  g++-aarch64-linux-gnu      # arm64 cross build of the runtime (NEON kernels)
  qemu-user                  # runs the arm64 kernel tests
  clang                      # iOS bridge: the C client through the module map (-fmodules), also for arm64
  shellcheck                 # iOS bridge: ios_bridge/make_xcframework.sh is checked
  openjdk-17-jdk-headless    # javac/java + jni.h for the Android JNI binding's desktop tests
  junit4                     # JUnit for the Android JNI binding's tests on the desktop JDK
)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing Debian packages: ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
