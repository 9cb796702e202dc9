# After the last join: wait until the API answers through the load balancer itself (real DNS, no
# pin), verified with the cluster CA, for at most ten minutes. Nothing is sent to the Kubernetes API
# from the deployer (add-ons) before this passes; it also proves the hairpin path works.
# Parameters: ENDPOINT_HOST.
: "${ENDPOINT_HOST:?}"
unpin_endpoint
deadline=$((SECONDS + 600))
until curl --silent --fail --max-time 5 --cacert "$PKI_DIR/ca.crt" "https://$ENDPOINT_HOST:6443/readyz" >/dev/null 2>&1; do
  [ "$SECONDS" -lt "$deadline" ] || fail "the API did not answer through the load balancer at $ENDPOINT_HOST within 10 minutes"
  sleep 5
done
log "the API answers through the load balancer at https://$ENDPOINT_HOST:6443"
