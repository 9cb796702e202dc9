# Step 1 on every node: wait for user data (node preparation) to finish, and fail loudly if it did not.
# cloud-init status exits 0 when done, 2 when done with recoverable warnings, 1 on error.
status=0
cloud-init status --wait >/dev/null || status=$?
if [ "$status" -ne 0 ] && [ "$status" -ne 2 ]; then
  log "cloud-init reported an error (exit $status); last lines of its output log:"
  tail -n 40 /var/log/cloud-init-output.log >&2 || true
fi
[ -f /var/lib/kubeadm-ha/prepared ] || fail "node preparation did not complete; see /var/log/cloud-init-output.log"
log "node prepared: $(cat /var/lib/kubeadm-ha/prepared)"
