#!/usr/bin/env sh
# Installs Debian's chromium for the browser test of @litter/report (packages/report/test/browser.test.ts).
# Never fails the caller: where chromium cannot be installed (not root, no apt-get, no network) it says why and
# exits 0, and the browser test skips itself with a message.
set -u

for candidate in "${LITTER_CHROMIUM:-}" /usr/bin/chromium /usr/bin/chromium-browser; do
  if [ -n "$candidate" ] && [ -x "$candidate" ]; then
    echo "install-chromium: found $candidate"
    exit 0
  fi
done

if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-chromium: no apt-get here; install chromium yourself (or set LITTER_CHROMIUM) to run the browser test"
  exit 0
fi
if [ "$(id -u)" != "0" ]; then
  echo "install-chromium: not root; run 'sudo apt-get install -y chromium' (or set LITTER_CHROMIUM) to run the browser test"
  exit 0
fi

echo "install-chromium: installing Debian's chromium (apt-get)"
export DEBIAN_FRONTEND=noninteractive
if apt-get update -qq && apt-get install -y -qq chromium >/dev/null; then
  echo "install-chromium: installed $(command -v chromium)"
else
  echo "install-chromium: apt-get could not install chromium; the browser test will be skipped"
fi
exit 0
