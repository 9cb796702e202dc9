# etcd membership, shared by the steps that change it. Every decision is made by plan_removals, a
# pure function of the member table, so the rules are tested on their own; the callers only gather
# the table and carry out what it prints, one member at a time.

# etcdctl's answers are read in its `-w fields` form: one `"Key" : value` line per field, with the
# same keys in etcd 3.5, 3.6 and 3.7. Its `-w simple` columns are not stable: `endpoint status` gained
# four in 3.6, so its fifth column, "is leader" before, is the database size there. The fields form
# prints member IDs in decimal, and etcdctl's commands take them in hex: bash's printf converts all 64
# bits (%x reads its argument as unsigned).

# The members in `etcdctl member list -w fields` (stdin), one line each: "id name peer-urls
# client-urls learner", the id in hex, each list of URLs comma-separated, and "-" for a name or a list
# that is empty (a member that never started).
member_rows() {
  local id rest
  awk '
    function flush() {
      if (id != "") print id, (name == "" ? "-" : name), (peers == "" ? "-" : peers), (clients == "" ? "-" : clients), learner
      id = ""; name = ""; peers = ""; clients = ""; learner = "false"
    }
    { key = $0; sub(/ : .*$/, "", key); value = substr($0, length(key) + 4); gsub(/^"|"$/, "", value) }
    key == "\"ID\"" { flush(); id = value }
    key == "\"Name\"" { name = value }
    key == "\"PeerURL\"" { peers = peers (peers == "" ? "" : ",") value }
    key == "\"ClientURL\"" { clients = clients (clients == "" ? "" : ",") value }
    key == "\"IsLearner\"" { learner = value }
    END { flush() }' | while read -r id rest; do
    printf '%x %s\n' "$id" "$rest"
  done
}

# The client URLs `etcdctl endpoint health -w fields` (stdin) reports healthy, one per line. A learner
# is never among them: it serves no reads ("rpc not supported for learner").
healthy_endpoints() {
  awk -F' : ' '$1 == "\"Endpoint\"" { endpoint = $2; gsub(/"/, "", endpoint) } $1 == "\"Health\"" && $2 == "true" { print endpoint }'
}

# The hex ID of etcd's leader, from `etcdctl endpoint status -w fields` (stdin): the member that
# reports itself as the Leader; nothing when none of the members that answered leads.
leader_id() {
  local id
  id=$(awk -F' : ' '$1 == "\"MemberID\"" { member = $2 } $1 == "\"Leader\"" && $2 == member && $2 != "0" { print $2; exit }')
  [ -z "$id" ] || printf '%x\n' "$id"
}

# The member table: one line per member, "id key learner healthy", from `etcdctl member list -w
# fields` (stdin) and the healthy client URLs ($1, a file, one per line). The key is the member's name,
# "-" for a member that never started; with MEMBER_KEY=peer, its peer URLs instead (an external member
# keeps its name when its instance is replaced; only its address tells the old member from the new).
member_table() {
  member_rows | awk -v healthy_file="$1" -v key="${MEMBER_KEY:-name}" '
    BEGIN { while ((getline url < healthy_file) > 0) healthy[url] = 1 }
    {
      up = "false"
      n = split($4, urls, ",")
      for (i = 1; i <= n; i++) if (urls[i] in healthy) up = "true"
      print $1, (key == "peer" ? $3 : $2), $5, up
    }'
}

# Decides which members to remove, from the member table on stdin. $1: the planned member names
# (space separated); $2: "down" (only members that are down and not planned: what must go before a
# join, since kubeadm refuses to join a cluster with a member down) or "surplus" (also healthy
# unplanned members, while more members remain than are planned). Prints "remove <id> <name>" lines in
# the order to carry them out, or one "refuse <reason>" line and nothing else. A removal is allowed only
# if the healthy voting members left still form a majority of the voting members left.
plan_removals() {
  awk -v planned=" $1 " -v mode="$2" -v planned_count="$(wc -w <<<"$1")" '
    { id[NR] = $1; name[NR] = $2; learner[NR] = $3; up[NR] = $4
      if ($3 == "false") { voters++; if ($4 == "true") healthy++ } }
    function stale(i) { return index(planned, " " name[i] " ") == 0 }
    END {
      if (healthy * 2 <= voters) {
        printf "refuse etcd has no quorum: %d of %d voting members are healthy; restore it from a snapshot (README: disaster recovery)\n", healthy, voters
        exit
      }
      members = NR
      # Members that are down cost no health to remove; a learner never votes.
      for (i = 1; i <= NR; i++) if (stale(i) && up[i] != "true") {
        out = out "remove " id[i] " " name[i] "\n"; members--
        if (learner[i] == "false") voters--
      }
      if (mode == "surplus") for (i = 1; i <= NR && members > planned_count; i++) if (stale(i) && up[i] == "true") {
        if (learner[i] == "false" && (healthy - 1) * 2 <= voters - 1) {
          printf "refuse removing %s would leave %d of %d voting members healthy, no majority\n", name[i], healthy - 1, voters - 1
          exit
        }
        out = out "remove " id[i] " " name[i] "\n"; members--
        if (learner[i] == "false") { voters--; healthy-- }
      }
      printf "%s", out
    }'
}

# The member table of the cluster, through the etcdctl function named by ETCDCTL (which runs etcdctl
# against a live member with its client certificate).
current_member_table() {
  local healthy list
  healthy=$(private_temp)
  list=$(private_temp)
  # Listing members needs a quorum; a member that answers at all (find_etcd_pod) without one means
  # the cluster lost it.
  "$ETCDCTL" member list -w fields >"$list" || fail "etcd has no quorum: its members answer but cannot agree on the member list; restore it from a snapshot (README: disaster recovery)"
  # Exits non-zero when any member is unhealthy; every member is still listed, with its health.
  "$ETCDCTL" endpoint health --cluster -w fields 2>/dev/null | healthy_endpoints >"$healthy" || true
  member_table "$healthy" <"$list"
  rm -f "$healthy" "$list"
}

# Removes members as plan_removals decides ($1: planned names, $2: mode), one at a time, moving etcd's
# leadership to a planned member first when the one to go leads. Each removed member's name is printed
# on stdout, for the caller to clean up after it (Node objects); everything else goes to stderr.
remove_members() {
  local decisions line id name leader target endpoints
  decisions=$(current_member_table | plan_removals "$1" "$2")
  if [[ "$decisions" == refuse* ]]; then
    fail "${decisions#refuse }"
  fi
  if grep -q '^remove ' <<<"$decisions"; then
    snapshot_before "removing etcd members that belong to no planned node" >&2
  fi
  while read -r line id name; do
    [ "$line" = remove ] || continue
    leader=$("$ETCDCTL" endpoint status --cluster -w fields 2>/dev/null | leader_id || true)
    if [ "$leader" = "$id" ]; then
      target=$(current_member_table | awk -v planned=" $1 " '$3 == "false" && $4 == "true" && index(planned, " " $2 " ") { print $1; exit }')
      if [ -n "$target" ]; then
        log "moving etcd leadership from $name to $target before removing it" >&2
        # etcdctl sends the move to the leader, which must be among the endpoints it is given, and stops
        # at the first of them that does not answer: the healthy ones only.
        endpoints=$("$ETCDCTL" endpoint health --cluster -w fields 2>/dev/null | healthy_endpoints | paste -sd, - || true)
        "$ETCDCTL" move-leader "$target" --endpoints="$endpoints" >/dev/null || log "could not move the leadership; etcd elects a new leader after the removal" >&2
      fi
    fi
    log "removing etcd member $name ($id): not planned" >&2
    "$ETCDCTL" member remove "$id" >/dev/null || fail "could not remove etcd member $name ($id)"
    printf '%s\n' "$name"
  done <<<"$decisions"
}

# Stacked etcd: removes members as remove_members does ($1: planned names, $2: mode) and the Node of
# each. kubeadm join waits for the etcd pod of every control-plane Node, so a removed member's Node
# (and with it its mirror pod) must go too.
remove_unplanned() {
  local name removed
  # An assignment of its own: a refusal or a failure inside stops the step (a `for` over a command
  # substitution would carry on with what it printed).
  removed=$(remove_members "$1" "$2") || exit 1
  for name in $removed; do
    kubectl --kubeconfig "$ADMIN_KUBECONFIG" --request-timeout=30s delete node "$name" --ignore-not-found >/dev/null || true
  done
}

# The row of member_rows (stdin) whose peer URLs include $1.
member_with_peer() {
  awk -v peer="$1" '!found { n = split($3, urls, ","); for (i = 1; i <= n; i++) if (urls[i] == peer) found = 1; if (found) print }'
}

# Adds the member named $1 with peer URL $2 as a learner, through ETCDCTL, unless etcd lists that peer
# URL already (a run that stopped after the add), and prints the cluster it starts in
# (`--initial-cluster-state existing`): every member's peer URLs under a name, $1 for itself. Not the
# one `etcdctl member add` prints: etcd reads the initial cluster as a map from names to peer URLs, so
# the member this one replaces, which still holds the same name, would merge with it into one member,
# and etcd would refuse to start ("member count is unequal"); the same for two members that never
# started (no name). Those are named after their IDs: etcd matches the live members by peer URL only.
# A learner takes no part in the quorum until it is promoted. etcd refuses a member while a voting
# member is down ("unhealthy cluster"; also for a few seconds after a leader change): tried for a
# minute, then refused, naming the members that are down.
add_learner() {
  local name=$1 peer=$2 deadline=$((SECONDS + 60)) error down
  if [ -z "$("$ETCDCTL" member list -w fields | member_rows | member_with_peer "$peer")" ]; then
    until error=$("$ETCDCTL" member add "$name" --learner --peer-urls="$peer" 2>&1 >/dev/null); do
      if [[ "$error" != *"unhealthy cluster"* ]] || [ "$SECONDS" -ge "$deadline" ]; then
        down=$(current_member_table | awk '$3 == "false" && $4 == "false" { printf "%s%s", sep, $2; sep = ", " }')
        [ -z "$down" ] || fail "refusing to add $name to etcd: voting members are down ($down), and etcd takes no new member while one is; a replacement removes the member it replaces only once the new one votes, so nothing was changed. Bring them back, or replace them too (pulumi up --replace <their instance URNs>), then run pulumi up again"
        fail "etcd refused to add $name as a learner: ${error##*Error: }"
      fi
      sleep 5
    done
  fi
  "$ETCDCTL" member list -w fields | member_rows | awk -v name="$name" -v peer="$peer" '
    {
      n = split($3, urls, ","); own = 0
      for (i = 1; i <= n; i++) if (urls[i] == peer) own = 1
      label = own ? name : ($2 == "-" || $2 == name) ? "member-" $1 : $2
      for (i = 1; i <= n; i++) { printf "%s%s=%s", sep, label, urls[i]; sep = "," }
    }'
}

# Promotes the learner with peer URL $1 to a voting member once it has caught up with the leader,
# which etcd requires ("can only promote a learner member which is in sync with leader"): tried every
# 5 seconds for at most $2 seconds. A member that votes already is left as it is.
promote_learner() {
  local peer=$1 deadline=$((SECONDS + $2)) row id learner error=""
  while true; do
    row=$("$ETCDCTL" member list -w fields 2>/dev/null | member_rows | member_with_peer "$peer" || true)
    read -r id _ _ _ learner <<<"$row"
    if [ -z "$row" ]; then
      error="Error: the member list names no member at $peer"
    else
      [ "$learner" = true ] || return 0
      if error=$("$ETCDCTL" member promote "$id" 2>&1 >/dev/null); then
        log "promoted the learner at $peer ($id) to a voting member"
        return 0
      fi
    fi
    [ "$SECONDS" -lt "$deadline" ] || fail "the learner at $peer did not become a voting member within $2s (etcd: ${error##*Error: }); it stays a learner, and no member was removed for it"
    sleep 5
  done
}

# Waits up to $1 seconds until every etcd member is started, healthy and voting, and, when $2 is set,
# there are exactly $2 of them.
wait_for_etcd_settled() {
  local deadline=$((SECONDS + $1)) table
  while true; do
    table=$(current_member_table 2>/dev/null || true)
    if [ -n "$table" ] && { [ -z "$2" ] || [ "$(wc -l <<<"$table")" -eq "$2" ]; } && ! grep -qvE '^[^ ]+ [^ -][^ ]* false true$' <<<"$table"; then
      return 0
    fi
    [ "$SECONDS" -lt "$deadline" ] || fail "etcd did not settle at ${2:-its} healthy voting members within $1s; members now: $(tr '\n' ';' <<<"$table")"
    sleep 5
  done
}

# Stacked etcd: etcdctl inside a live member's static pod, reached through the API with
# ADMIN_KUBECONFIG. No etcd client is needed on the node, and the pod holds the client certificates.
etcdctl_in_pod() {
  kubectl --kubeconfig "$ADMIN_KUBECONFIG" --request-timeout=30s -n kube-system exec "$ETCD_POD" -- etcdctl \
    --endpoints=https://127.0.0.1:2379 --dial-timeout=5s --command-timeout=15s --cacert /etc/kubernetes/pki/etcd/ca.crt \
    --cert /etc/kubernetes/pki/etcd/healthcheck-client.crt --key /etc/kubernetes/pki/etcd/healthcheck-client.key "$@"
}

# Sets ETCD_POD to the pod of a member whose etcd answers: a planned member's if any answers ($1:
# planned node names), since an unplanned one may be the next removed and a removed member stops
# serving; else any listed member's (a rolling replacement of every node starts with none planned).
find_etcd_pod() {
  local pod listed planned
  read -ra planned <<<"$1"
  listed=$(kubectl --kubeconfig "$ADMIN_KUBECONFIG" --request-timeout=30s -n kube-system get pods -l component=etcd -o name 2>/dev/null || true)
  for pod in $(printf 'etcd-%s\n' "${planned[@]}") ${listed//pod\//}; do
    ETCD_POD=$pod
    # Answers without a quorum too, so a lost quorum is told apart from no member at all.
    if etcdctl_in_pod endpoint status -w fields >/dev/null 2>&1; then
      return 0
    fi
  done
  fail "no stacked etcd member answers through the API"
}

# Deletes the Node objects of control-plane nodes that are not planned (never a worker's).
remove_stale_control_plane_nodes() {
  local wanted=" $1 " node
  for node in $(kubectl --kubeconfig "$ADMIN_KUBECONFIG" --request-timeout=30s get nodes -l node-role.kubernetes.io/control-plane -o name); do
    node=${node#node/}
    if [[ "$wanted" != *" $node "* ]]; then
      log "deleting Node $node: not a planned control-plane node"
      kubectl --kubeconfig "$ADMIN_KUBECONFIG" --request-timeout=30s delete node "$node" --ignore-not-found >/dev/null
    fi
  done
}
