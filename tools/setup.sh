#!/usr/bin/env bash
# setup.sh: installs rn50's build and test dependencies from Debian (root or
# sudo), skipping what is already there. Used by README's commands and CI.
set -euo pipefail
pkgs="build-essential libturbojpeg0-dev libjpeg62-turbo-dev libspng-dev libpng-dev zlib1g-dev
      python3-torch python3-torchvision python3-numpy python3-pil python3-protobuf"
missing=""
for p in $pkgs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "setup: installing$missing"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
echo "setup: dependencies present"
