#!/usr/bin/env bash
# Points containerd's sandbox (pause) image at the one the installed kubeadm release expects.
# containerd's own default lags kubeadm's (containerd 1.7 ships pause:3.8, kubeadm 1.37 expects
# pause:3.10.2): kubeadm's preflight warns, and the kubelet's pods run on a sandbox image that
# `kubeadm config images pull` never fetched, so every node pulls a second pause image and keeps it
# out of image garbage collection (kubernetes/kubernetes#115610). Sourced by node preparation and by
# the upgrade step, after kubeadm is installed, so a minor upgrade that moves the pause image moves it.

# containerd_pause_image FILE: sets the sandbox image in FILE, containerd 1.x (`sandbox_image` under
# io.containerd.grpc.v1.cri) or 2.x (`sandbox` under io.containerd.cri.v1.images's pinned_images).
# Prints "changed" (containerd must restart to read it) or "unchanged"; fails when it cannot set it.
containerd_pause_image() {
  local config=$1 image version
  version=$(kubeadm version -o short)
  # An exact release needs no lookup at dl.k8s.io; stderr carries a bind-address warning.
  image=$(kubeadm config images list --kubernetes-version "$version" 2>/dev/null | grep -E '/pause:[^[:space:]]+$') ||
    { echo "kubeadm $version lists no pause image" >&2; return 2; }
  [[ $image =~ ^[A-Za-z0-9./:_-]+$ ]] || { echo "kubeadm $version lists an unexpected pause image: $image" >&2; return 2; }
  if grep -Eq "^[[:space:]]*sandbox(_image)?[[:space:]]*=[[:space:]]*[\"']${image}[\"'][[:space:]]*$" "$config"; then
    echo unchanged
    return 0
  fi
  sed -i -E \
    -e "s|^([[:space:]]*sandbox_image[[:space:]]*=[[:space:]]*).*$|\\1\"${image}\"|" \
    -e "s|^([[:space:]]*sandbox[[:space:]]*=[[:space:]]*)['\"].*$|\\1'${image}'|" \
    "$config"
  grep -Eq "^[[:space:]]*sandbox(_image)?[[:space:]]*=[[:space:]]*[\"']${image}[\"']" "$config" ||
    { echo "$config has no sandbox image setting to point at $image" >&2; return 2; }
  echo changed
}
