#!/usr/bin/env sh
# Installs Debian's blender for the tests of @litter/render and `litter render` (they render tiny scenes with
# real Blender; python3-numpy makes its pixel counts fast). Never fails the caller: where blender cannot be installed (not root, no apt-get, no network)
# it says why and exits 0, and those tests are skipped with a message.
set -u

for candidate in "${LITTER_BLENDER:-}" "$(command -v blender 2>/dev/null)"; do
  if [ -n "$candidate" ] && [ -x "$candidate" ]; then
    echo "install-blender: found $candidate"
    exit 0
  fi
done

if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-blender: no apt-get here; install Blender 3.3+ yourself (or set LITTER_BLENDER) to run the render tests"
  exit 0
fi
if [ "$(id -u)" != "0" ]; then
  echo "install-blender: not root; run 'sudo apt-get install -y blender' (or set LITTER_BLENDER) to run the render tests"
  exit 0
fi

echo "install-blender: installing Debian's blender (apt-get)"
export DEBIAN_FRONTEND=noninteractive
if apt-get update -qq && apt-get install -y -qq blender python3-numpy >/dev/null; then
  echo "install-blender: installed $(command -v blender)"
else
  echo "install-blender: apt-get could not install blender; the render tests will be skipped"
fi
exit 0
