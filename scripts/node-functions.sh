#!/usr/bin/env bash
# Functions every script kubeadm-ha runs on a node shares: the remote steps (after common.sh), the
# etcd backup program and the nodes' preparation in user data. The caller defines fail MESSAGE.

# Makes each directory DIR... that is missing with mode MODE, and leaves one that exists exactly as it
# is. For directories kubeadm-ha shares with the system or other software (/usr/local/sbin,
# /etc/systemd/system, /etc/apt/sources.list.d, the node exporter's textfile directory): GNU
# `install -d -m MODE DIR` also sets MODE on a DIR that exists, and a system directory set to 0700 that
# way (/run, /var/lib) breaks every service not run as root. `install -d -m` is only ever given
# kubeadm-ha's own directories; the parents it makes are 0755 whatever the umask.
make_dir() {
  local mode=$1 dir
  shift
  for dir in "$@"; do
    [ -d "$dir" ] || install -d -m "$mode" "$dir"
  done
}

# Downloads the official etcd release $1 for this machine's architecture into directory $4, checks
# it against its pinned SHA-256 ($2 for amd64, $3 for arm64), extracts the tools named after them and
# prints the directory that holds them.
fetch_etcd_release() {
  local version=$1 amd64=$2 arm64=$3 dir=$4 arch sha256 name
  shift 4
  arch=$(dpkg --print-architecture)
  case "$arch" in
    amd64) sha256=$amd64 ;;
    arm64) sha256=$arm64 ;;
    *) fail "unsupported architecture $arch" ;;
  esac
  name="etcd-v${version}-linux-${arch}"
  curl -fsSL --retry 5 -o "$dir/$name.tar.gz" "https://github.com/etcd-io/etcd/releases/download/v${version}/${name}.tar.gz" ||
    fail "could not download etcd v$version"
  echo "${sha256}  $dir/$name.tar.gz" | sha256sum --check --strict --quiet || fail "the etcd release v$version does not match its pinned SHA-256"
  tar -xzf "$dir/$name.tar.gz" -C "$dir" "${@/#/$name/}"
  printf '%s' "$dir/$name"
}
