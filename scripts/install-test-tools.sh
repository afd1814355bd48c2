#!/usr/bin/env sh
# Installs the Debian packages that some tests need, in one apt-get call: chromium for the browser test of
# @litter/report (packages/report/test/browser.test.ts), blender (with python3-numpy, which makes its pixel counts
# fast) for the tests of @litter/render and `litter render`. Never fails the caller: where a tool cannot be
# installed (not root, no apt-get, no network) it says why and exits 0, and those tests skip with a message.
set -u

missing=""
# found NAME CANDIDATE...: true (and says so) when one of the candidates is an executable.
found() {
  name=$1
  shift
  for candidate in "$@"; do
    if [ -n "$candidate" ] && [ -x "$candidate" ]; then
      echo "install-test-tools: $name found at $candidate"
      return 0
    fi
  done
  return 1
}
found chromium "${LITTER_CHROMIUM:-}" /usr/bin/chromium /usr/bin/chromium-browser || missing="$missing chromium"
found blender "${LITTER_BLENDER:-}" "$(command -v blender 2>/dev/null)" || missing="$missing blender python3-numpy"
[ -z "$missing" ] && exit 0

hint="chromium (or set LITTER_CHROMIUM) for the browser test, Blender 3.3+ (or set LITTER_BLENDER) for the render tests"
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-test-tools: no apt-get here; install$missing yourself: $hint"
  exit 0
fi
if [ "$(id -u)" != "0" ]; then
  echo "install-test-tools: not root; run 'sudo apt-get install -y$missing': $hint"
  exit 0
fi

echo "install-test-tools: installing Debian's$missing (apt-get)"
export DEBIAN_FRONTEND=noninteractive
# shellcheck disable=SC2086 # $missing is a list of package names
if apt-get update -qq && apt-get install -y -qq $missing >/dev/null; then
  echo "install-test-tools: installed$missing"
else
  echo "install-test-tools: apt-get could not install$missing; the tests that need them will be skipped"
fi
exit 0
