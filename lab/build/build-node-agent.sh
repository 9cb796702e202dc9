#!/usr/bin/env bash
# Builds the lab's node agent (lab/node-agent: the kubelet and CRI stand-ins, and a lab host's init)
# and caches it per machine, keyed by a digest of its source, so a second call costs a checksum.
#
#   lab/build/build-node-agent.sh   -> prints $CACHE/node-agent-<digest>/node-agent
set -euo pipefail
export PATH="$PATH:/usr/local/go/bin"
command -v go >/dev/null || { echo "build-node-agent: go is not installed (https://go.dev/doc/install)" >&2; exit 1; }
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=readonly

source_dir=$(cd "$(dirname "$0")/../node-agent" && pwd)
digest=$(cd "$source_dir" && cat go.mod go.sum ./*.go | sha256sum | cut -c1-16)
cache=${KUBEADM_HA_LAB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kubeadm-ha-lab}
out="$cache/node-agent-$digest"
if [ ! -x "$out/node-agent" ]; then
  mkdir -p "$out"
  (cd "$source_dir" && go build -trimpath -ldflags=-s -o "$out/node-agent.partial" .)
  mv "$out/node-agent.partial" "$out/node-agent"
fi
echo "$out/node-agent"
