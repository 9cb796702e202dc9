# Step 1 on every node: wait for user data (node preparation) to finish, and fail loudly if it did not.
# cloud-init status exits 0 when done, 2 when done with recoverable warnings, 1 on error.
# Prints one line on stdout, the node's SSH host key: every later step on the node is pinned to it.
# Everything else goes to stderr.
status=0
cloud-init status --wait >/dev/null || status=$?
if [ "$status" -ne 0 ] && [ "$status" -ne 2 ]; then
  log "cloud-init reported an error (exit $status); last lines of its output log:" >&2
  tail -n 40 /var/log/cloud-init-output.log >&2 || true
fi
[ -f "$STATE_DIR/prepared" ] || fail "node preparation did not complete; see /var/log/cloud-init-output.log"
log "node prepared: $(cat "$STATE_DIR/prepared")" >&2
host_key=$ROOT/etc/ssh/ssh_host_ed25519_key.pub
grep -qE '^ssh-ed25519 [A-Za-z0-9+/]+=* ?' "$host_key" 2>/dev/null ||
  fail "no ed25519 SSH host key in $host_key; the later steps pin their connections to it"
head -n 1 "$host_key"
