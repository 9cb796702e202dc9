#!/usr/bin/env bash
# Builds the real binaries the lab runs, from their Go modules, at exact releases, and caches them per
# machine keyed by release: a second call for a release that is cached costs a directory check.
#
#   lab/build/build-release.sh kubernetes 1.37.2   -> $CACHE/kubernetes-v1.37.2/{kubeadm,kube-apiserver,...}
#   lab/build/build-release.sh kubeadm 1.36.5      -> $CACHE/kubeadm-v1.36.5/kubeadm (kubeadm alone: a
#                                                     release whose configurations the lab judges but runs no host of)
#   lab/build/build-release.sh etcd 3.7.0          -> $CACHE/etcd-v3.7.0/{etcd,etcdctl,etcdutl}
#
# No source is kept in the project: a throwaway main module under the cache requires the release's
# modules from the Go module proxy and `go build`s their commands. Kubernetes lists its staging modules
# (k8s.io/api, k8s.io/client-go, ...) at v0.0.0 with replaces into its own tree, which a dependency's
# go.mod cannot use, so the main module replaces each one with its published v0.<minor>.<patch>. The
# version is stamped as the release's hack/lib/version.sh does (kubeadm compares it with the control
# plane's and picks its images and its etcd from it); etcd's is a constant of its api module.
set -euo pipefail

component=${1:?usage: build-release.sh kubernetes|kubeadm|etcd RELEASE}
release=${2:?usage: build-release.sh kubernetes|kubeadm|etcd RELEASE}
release=${release#v}
[[ $release =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || { echo "build-release: release must be X.Y.Z, got '$release'" >&2; exit 2; }

export PATH="$PATH:/usr/local/go/bin"
command -v go >/dev/null || { echo "build-release: go is not installed (https://go.dev/doc/install)" >&2; exit 1; }
# The toolchain here builds every release; never let a go directive download another one.
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod

cache=${KUBEADM_HA_LAB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kubeadm-ha-lab}
out="$cache/$component-v$release"
if [ -f "$out/.complete" ]; then
  echo "$out"
  exit 0
fi

work="$cache/work/$component-v$release"
rm -rf "$work" "$out.partial"
mkdir -p "$work" "$out.partial"
cd "$work"

started=$SECONDS
case "$component" in
kubernetes | kubeadm)
  IFS=. read -r major minor patch <<<"$release"
  cat >go.mod <<MOD
module kubeadm-ha.lab/kubernetes

go 1.26

require k8s.io/kubernetes v$release
MOD
  kmod=$(go mod download -json "k8s.io/kubernetes@v$release" | sed -n 's/^\t"GoMod": "\(.*\)",$/\1/p')
  [ -f "$kmod" ] || { echo "build-release: k8s.io/kubernetes@v$release is not on the module proxy" >&2; exit 1; }
  # Every staging module Kubernetes requires at v0.0.0, to its release.
  for m in $(awk '$2 == "v0.0.0" && $1 ~ /^k8s\.io\// {print $1}' "$kmod" | sort -u); do
    echo "replace $m => $m v0.$minor.$patch" >>go.mod
  done
  src=$(go mod download -json "k8s.io/kubernetes@v$release" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
  # The values hack/lib/version.sh stamps for a release build from a clean tag.
  grep -q "k8s.io/component-base/version.\${key}" "$src/hack/lib/version.sh" ||
    { echo "build-release: $release's hack/lib/version.sh stamps other packages; update this script" >&2; exit 1; }
  ldflags="-s -w"
  for pkg in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
    ldflags+=" -X $pkg.gitVersion=v$release -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
    ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  commands=(kubeadm kube-apiserver kube-controller-manager kube-scheduler kubectl)
  [ "$component" = kubernetes ] || commands=(kubeadm)
  for c in "${commands[@]}"; do
    go build -trimpath -ldflags "$ldflags" -o "$out.partial/$c" "k8s.io/kubernetes/cmd/$c"
  done
  "$out.partial/kubeadm" version -o short | grep -qx "v$release"
  ;;
etcd)
  cat >go.mod <<MOD
module kubeadm-ha.lab/etcd

go 1.26

require (
	go.etcd.io/etcd/server/v3 v$release
	go.etcd.io/etcd/etcdctl/v3 v$release
	go.etcd.io/etcd/etcdutl/v3 v$release
)
MOD
  go build -trimpath -ldflags "-s -w" -o "$out.partial/etcd" go.etcd.io/etcd/server/v3
  go build -trimpath -ldflags "-s -w" -o "$out.partial/etcdctl" go.etcd.io/etcd/etcdctl/v3
  go build -trimpath -ldflags "-s -w" -o "$out.partial/etcdutl" go.etcd.io/etcd/etcdutl/v3
  # Not a pipe into grep -q: etcd would die of SIGPIPE writing the lines after the match.
  [[ $("$out.partial/etcd" --version) == *"etcd Version: $release"* ]]
  ;;
*)
  echo "build-release: component must be kubernetes, kubeadm or etcd, got '$component'" >&2
  exit 2
  ;;
esac

touch "$out.partial/.complete"
rm -rf "$out"
mv "$out.partial" "$out"
echo "build-release: $component v$release built in $((SECONDS - started)) s" >&2
echo "$out"
