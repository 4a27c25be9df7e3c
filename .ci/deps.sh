#!/bin/sh
# Install whichever of the given Debian packages are missing.
# As root: apt-get install them.  Otherwise: print the command and fail.
missing=""
for p in "$@"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "giro: missing packages:$missing" >&2
  echo "run as root:  apt-get install -y$missing" >&2
  exit 3
fi
echo "giro: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends $missing >/dev/null || {
  echo "giro: apt-get install$missing failed" >&2; exit 3; }
