/**
 * The etcdctl output the scripts read, from the real etcd and etcdctl of the release kubeadm pins for
 * the default Kubernetes release (lab/releases.ts; built by lab/build/build-release.sh), with three real
 * members on 127.0.0.1-3 inside a private network namespace (`unshare -n`, so nothing else on the
 * machine is reached or in the way). The membership functions of scripts/remote/members.sh run against
 * them as the steps run them; and the model's etcdctl (tools/offline/hosts/model.cjs), which the
 * lifecycle simulation runs instead, must print the same fields in the same order.
 */
import { spawnSync } from "node:child_process";
import { symlinkSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { binary, CURRENT } from "../lab/releases";
import { tempDir } from "./tools";

const SCRIPTS = join(__dirname, "..", "scripts", "remote");
const MODEL = join(__dirname, "..", "tools", "offline", "hosts", "model.cjs");

/** Sections of the scenario's output: "### name" lines, each followed by what it captured. */
function sections(stdout: string): Record<string, string> {
    const found: Record<string, string> = {};
    let name = "";
    for (const line of stdout.split("\n")) {
        const head = /^### (\S+)$/.exec(line);
        if (head) {
            name = head[1];
            found[name] = "";
        } else if (name) found[name] += `${line}\n`;
    }
    for (const key of Object.keys(found)) found[key] = found[key].replace(/\n+$/, "\n");
    return found;
}

/**
 * Inside the namespace: three members form a cluster; the raw output of each form the scripts read is
 * captured; then members.sh reads the cluster and replaces m2 (moved to 127.0.0.4) the way an external
 * member's start step does, with m2 leading: down members out, a learner in, promoted once in sync,
 * leadership moved off the old member, the old member removed.
 */
const SCENARIO = String.raw`
set -euo pipefail
ip link set lo up
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true' EXIT
start_member() { # name address state initial-cluster
  "$ETCD_BIN/etcd" --name "$1" --data-dir "$WORK/data-$2" --listen-client-urls "http://$2:2379" --advertise-client-urls "http://$2:2379"     --listen-peer-urls "http://$2:2380" --initial-advertise-peer-urls "http://$2:2380" --initial-cluster "$4"     --initial-cluster-token kubeadm-ha-etcd --initial-cluster-state "$3" >"$WORK/etcd-$2.log" 2>&1 &
}
ctl() { "$ETCD_BIN/etcdctl" --endpoints=http://127.0.0.1:2379 --dial-timeout=5s --command-timeout=10s "$@"; }
section() { printf '### %s\n' "$1"; }
initial=m0=http://127.0.0.1:2380,m1=http://127.0.0.2:2380,m2=http://127.0.0.3:2380
for i in 0 1 2; do start_member "m$i" "127.0.0.$((i + 1))" new "$initial"; done
for _ in $(seq 1 100); do ctl endpoint health --cluster >/dev/null 2>&1 && break; sleep 0.2; done

. "$SCRIPTS/common.sh"
. "$SCRIPTS/members.sh"
ETCDCTL=ctl

section member-list-fields; ctl member list -w fields
section member-list-simple; ctl member list -w simple
section endpoint-status-fields; ctl endpoint status --cluster -w fields
section endpoint-status-simple; ctl endpoint status --cluster -w simple
section endpoint-health-fields; ctl endpoint health --cluster -w fields
section member-table; current_member_table
section leader; ctl endpoint status --cluster -w fields | leader_id
# A learner added and removed: what member add and member remove print. The leader takes members only
# once it has been connected to its peers for 5 seconds (etcd's HealthInterval).
until added=$(ctl member add x --learner --peer-urls=http://127.0.0.9:2380 2>/dev/null); do sleep 1; done
section member-add-learner; printf '%s\n' "$added"
section member-remove; ctl member remove "$(awk '/^Member / { print $2 }' <<<"$added")"

# m2 leads, then it is replaced by a member of its name at 127.0.0.4.
m2=$(ctl member list -w fields | member_rows | awk '$2 == "m2" { print $1 }')
ctl move-leader "$m2" --endpoints=http://127.0.0.1:2379,http://127.0.0.2:2379,http://127.0.0.3:2379 >/dev/null
section leader-before; ctl endpoint status --cluster -w fields | leader_id
MEMBER_KEY=peer
planned="http://127.0.0.1:2380 http://127.0.0.2:2380 http://127.0.0.4:2380"
section learner-added
{
  remove_members "$planned" down
  cluster=$(add_learner m2 http://127.0.0.4:2380)
  echo "cluster $cluster"
} 2>&1
section learner-list-fields; ctl member list -w fields
start_member m2 127.0.0.4 existing "$cluster"
section replaced
{
  promote_learner http://127.0.0.4:2380 120
  remove_members "$planned" surplus
} 2>&1
section after; ctl member list -w fields | member_rows
section health-after; ctl endpoint health --cluster -w fields | healthy_endpoints | sort
`;

interface Scenario {
    status: number | null;
    stderr: string;
    out: Record<string, string>;
}

let scenario: Scenario;

beforeAll(() => {
    const work = tempDir("etcdctl");
    const namespace = process.getuid!() === 0 ? ["-n"] : ["-r", "-n"];
    const result = spawnSync("unshare", [...namespace, "bash", "-c", SCENARIO], {
        encoding: "utf8",
        timeout: 180_000,
        env: { ...process.env, ETCD_BIN: dirname(binary("etcd")), WORK: work, SCRIPTS, KUBEADM_HA_ROOT: join(work, "root") },
    });
    scenario = { status: result.status, stderr: result.stderr, out: sections(result.stdout) };
    if (result.status !== 0 || process.env.SHOW_SCENARIO) console.log(result.stdout, result.stderr);
}, 200_000);

/** A fields line's shape: its key and the kind of its value. */
function fieldShapes(text: string): string[] {
    return text
        .replace(/\n+$/, "")
        .split("\n")
        .map((line) => {
            const match = /^("[A-Za-z]+") : (.*)$/.exec(line);
            if (!match) return line === "" ? "" : `? ${line}`;
            const value = match[2];
            const kind = /^\d+$/.test(value)
                ? "number"
                : /^(true|false)$/.test(value)
                  ? "bool"
                  : /^".*"$/.test(value)
                    ? "string"
                    : /^\[.*\]$/.test(value)
                      ? "list"
                      : /^[\d.]+(ms|s|µs)$/.test(value)
                        ? "duration"
                        : value === ""
                          ? "empty"
                          : `? ${value}`;
            return `${match[1]} ${kind}`;
        });
}

/** A simple line's shape: the kind of each ", "-separated column. */
function columnShapes(text: string): string[][] {
    return text
        .trim()
        .split("\n")
        .map((line) =>
            line
                .split(", ")
                .map((c) =>
                    /^https?:\/\/[0-9.]+:\d+$/.test(c)
                        ? "url"
                        : /^[0-9a-f]{10,16}$/.test(c)
                          ? "hex"
                          : /^(true|false)$/.test(c)
                            ? "bool"
                            : /^\d+\.\d+\.\d+$/.test(c)
                              ? "version"
                              : /^[\d.]+ [kMG]?B$/.test(c)
                                ? "size"
                                : /^\d+%$/.test(c)
                                  ? "percent"
                                  : /^\d+$/.test(c)
                                    ? "number"
                                    : c === ""
                                      ? "empty"
                                      : /^(started|unstarted)$/.test(c)
                                        ? c
                                        : "name",
                ),
        );
}

/** The model's etcdctl, run as the simulation runs it on an external member's host, over three running members. */
function modelEtcdctl(args: string[]): { status: number | null; stdout: string; stderr: string } {
    const dir = tempDir("etcdctl-model");
    const ids = ["2be1eb8f85b7f641", "2be1eb8f86b7f644", "2be1eb8f87b7f647"];
    const hosts = Object.fromEntries(
        ids.map((id, i) => [
            `h${i}`,
            {
                id: `h${i}`,
                instance: `etcd-${i}`,
                name: `m${i}`,
                ip: `10.0.${i}.10`,
                role: "etcd",
                alive: true,
                api: false,
                member: false,
                etcd: { active: true, memberId: id },
                root: dir,
            },
        ]),
    );
    const members = ids.map((id, i) => ({
        id,
        name: `m${i}`,
        peerUrl: `https://10.0.${i}.10:2380`,
        clientUrl: `https://10.0.${i}.10:2379`,
        learner: false,
        host: `h${i}`,
    }));
    const world = {
        hosts,
        cluster: { inits: 0, members: [], nodes: [], tokens: [], nextId: 0 },
        etcd: { formed: 1, members, leader: ids[1], nextId: 3 },
        releases: {},
        events: [],
    };
    writeFileSync(join(dir, "world.json"), JSON.stringify(world));
    symlinkSync(MODEL, join(dir, "etcdctl"));
    const result = spawnSync(join(dir, "etcdctl"), ["--endpoints=https://10.0.0.10:2379", ...args], {
        encoding: "utf8",
        env: { ...process.env, SIM_WORLD: join(dir, "world.json"), SIM_HOST: "h0", SIM_STEP: "test", KUBEADM_HA_ROOT: dir },
    });
    return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe(`etcdctl ${CURRENT.etcd}, the release kubeadm pins for Kubernetes ${CURRENT.kubernetes}, read by the scripts`, () => {
    it("runs: three real members in a network namespace of their own", () => {
        expect([scenario.status, scenario.stderr]).toEqual([0, expect.any(String)]);
    });

    it("member_table reads member list -w fields: every member, its ID in hex as the simple form prints it, voting and healthy", () => {
        const simpleIds = scenario.out["member-list-simple"]
            .trim()
            .split("\n")
            .map((line) => line.split(", ")[0]);
        const rows = scenario.out["member-table"].trim().split("\n");
        expect(rows.map((r) => r.split(" ")[0]).sort()).toEqual([...simpleIds].sort());
        expect(rows.map((r) => r.split(" ").slice(1).join(" ")).sort()).toEqual(["m0 false true", "m1 false true", "m2 false true"]);
        // Member IDs are random 64-bit numbers: these are beyond 2^53 (a double) and most beyond 2^63.
        expect(scenario.out["member-list-fields"]).toMatch(/^"ID" : \d{17,20}$/m);
    });

    it("leader_id finds the leader that endpoint status's 'is leader' column names, which is not the fifth column since 3.6", () => {
        const rows = scenario.out["endpoint-status-simple"]
            .trim()
            .split("\n")
            .map((line) => line.split(", "));
        expect(rows.every((columns) => columns.length === 16)).toBe(true);
        // Fifth: the database size; ninth: "is leader".
        expect(rows.map((columns) => columns[4])).toEqual(rows.map(() => expect.stringMatching(/^[\d.]+ [kMG]?B$/)));
        const leaders = rows.filter((columns) => columns[8] === "true").map((columns) => columns[1]);
        expect(leaders).toHaveLength(1);
        expect(scenario.out.leader.trim()).toBe(leaders[0]);
    });

    it("replacing the leading member: a learner joins, is promoted when in sync, leadership moves, then the old member goes", () => {
        const log = scenario.out["learner-added"] + scenario.out.replaced;
        const m2 = scenario.out["member-table"]
            .split("\n")
            .find((r) => r.includes(" m2 "))!
            .split(" ")[0];
        expect(scenario.out["leader-before"].trim()).toBe(m2);
        // The initial cluster the new member starts with: its name once, the member it replaces under its ID.
        const cluster = /^cluster (\S+)$/m.exec(log)![1].split(",").sort();
        expect(cluster).toEqual(["m0=http://127.0.0.1:2380", "m1=http://127.0.0.2:2380", "m2=http://127.0.0.4:2380", `member-${m2}=http://127.0.0.3:2380`]);
        expect(scenario.out["learner-list-fields"]).toMatch(/"PeerURL" : "http:\/\/127\.0\.0\.4:2380"\n(?:"ClientURL" : .*\n)?"IsLearner" : true/);
        const order = [
            /promoted the learner at http:\/\/127\.0\.0\.4:2380 \([0-9a-f]+\) to a voting member/,
            /moving etcd leadership from http:\/\/127\.0\.0\.3:2380 to [0-9a-f]+ before removing it/,
            new RegExp(`removing etcd member http://127\\.0\\.0\\.3:2380 \\(${m2}\\): not planned`),
        ].map((pattern) => log.search(pattern));
        expect(order.every((at) => at >= 0)).toBe(true);
        expect([...order].sort((a, b) => a - b)).toEqual(order);
        const after = scenario.out.after
            .trim()
            .split("\n")
            .map((r) => r.split(" ").slice(1).join(" "));
        expect(after.sort()).toEqual([
            "m0 http://127.0.0.1:2380 http://127.0.0.1:2379 false",
            "m1 http://127.0.0.2:2380 http://127.0.0.2:2379 false",
            "m2 http://127.0.0.4:2380 http://127.0.0.4:2379 false",
        ]);
        expect(scenario.out["health-after"].trim().split("\n")).toEqual(["http://127.0.0.1:2379", "http://127.0.0.2:2379", "http://127.0.0.4:2379"]);
    });

    it.each([
        ["member-list-fields", ["member", "list", "-w", "fields"]],
        ["endpoint-status-fields", ["endpoint", "status", "--cluster", "-w", "fields"]],
        ["endpoint-health-fields", ["endpoint", "health", "--cluster", "-w", "fields"]],
    ])("the model prints %s as the real etcdctl does", (section, args) => {
        const model = modelEtcdctl(args);
        expect(model.status).toBe(0);
        expect(fieldShapes(model.stdout)).toEqual(fieldShapes(scenario.out[section]));
    });

    it.each([
        ["member-list-simple", ["member", "list", "-w", "simple"]],
        ["endpoint-status-simple", ["endpoint", "status", "--cluster", "-w", "simple"]],
    ])("the model prints %s with the real etcdctl's columns", (section, args) => {
        const model = modelEtcdctl(args);
        expect(model.status).toBe(0);
        expect(columnShapes(model.stdout)).toEqual(columnShapes(scenario.out[section]));
    });

    it.each([
        ["member-add-learner", ["member", "add", "x", "--learner", "--peer-urls=https://10.0.3.10:2380"]],
        ["member-remove", ["member", "remove", "2be1eb8f87b7f647"]],
    ])("the model's %s prints what the real one does", (section, args) => {
        const model = modelEtcdctl(args);
        // IDs and addresses are the cluster's; the initial cluster's entries are in member ID order.
        const shape = (text: string) =>
            text
                // IDs print as Go's %16x: space-padded, so one with leading zero digits is shorter.
                .replace(/(Member|cluster) +[0-9a-f]{1,16}\b/g, "$1 <id>")
                .replace(
                    /"((?:[a-z0-9-]+=https?:\/\/[0-9.:]+,?)+)"/g,
                    (_, list: string) =>
                        `"${list
                            .split(",")
                            .map((entry) => entry.replace(/^[^=]+=.*$/, "<name>=<url>"))
                            .sort()
                            .join(",")}"`,
                )
                .replace(/https?:\/\/[0-9.]+:2380/g, "<url>");
        expect(model.status).toBe(0);
        expect(shape(model.stdout)).toBe(shape(scenario.out[section]));
    });
});
