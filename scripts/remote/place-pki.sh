# Step 2 on every node: stage the certificates and keys sent on stdin, then place them for kubeadm.
# Input, one file per line: "<octal mode> <path relative to the PKI directory> <base64 content>".
install -d -m 0700 "$STAGED_PKI_DIR"
count=0
while read -r mode path data; do
  [ -n "${mode:-}" ] || continue
  [[ "$mode" =~ ^0[0-7]{3}$ ]] || fail "bad mode '$mode' for $path"
  [[ "$path" =~ ^[a-z0-9][a-z0-9./-]*$ && "$path" != *..* ]] || fail "refusing path '$path'"
  install -d -m 0700 "$STAGED_PKI_DIR/$(dirname "$path")"
  tmp=$(mktemp "$STAGED_PKI_DIR/.incoming.XXXXXX")
  printf '%s' "$data" | base64 -d >"$tmp"
  chmod "$mode" "$tmp"
  mv -f "$tmp" "$STAGED_PKI_DIR/$path"
  count=$((count + 1))
done
[ "$count" -gt 0 ] || fail "no files on stdin"
restore_pki
log "placed $count certificate and key files in $PKI_DIR"
