/**
 * The program's own steps, for real, on lab hosts (lab/): the dev stack's three control-plane nodes
 * with stacked etcd run every remote command the program renders, in the engine's order, with real
 * kubeadm, etcd and control-plane binaries of the default release, behind HAProxy health-checking as
 * the NLB does. Then, from a deployer on the lab's network with the admin kubeconfig the program
 * outputs, through the load balancer's name: the API is ready, every planned node is listed, etcd has
 * exactly the planned members, all voting, the controller-manager and scheduler hold their leases,
 * and the API server's certificate verifies against the program's CA for that name. After every step,
 * on every host, the host invariants hold (lab/invariants.ts). Every step run again changes nothing.
 *
 * Then the day-2 programs the steps installed, run by the lab's systemctl from their unit files: the
 * first up's local etcd snapshot on every node, and a certificate renewal by hand on node 1.
 *
 * Then later `pulumi up`s, through the lifecycle engine the simulation runs (tools/offline/apply.ts)
 * with the real binaries instead of the models: node 1 replaced while its old host still runs (the
 * new node joins, the old member and Node go, the old instance is terminated), then again after its
 * host has died (no step waits on the dead host). After each: the API ready, etcd exactly the planned
 * members, all voting and healthy, the Nodes exactly the planned ones.
 */
import { Lab, labUnavailable } from "../lab/hosts";
import { LabCluster, StepResult } from "../lab/cluster";
import { commandsByDependency } from "../tools/offline/apply";
import { invariantViolations, systemDirectoryModes } from "../lab/invariants";
import { binary, CURRENT, nodeAgent } from "../lab/releases";
import { BACKUP_DIR } from "../core/backup";
import { ProgramRun, resetState, zonesOf } from "../tools/offline/engine";
import { readStackConfig } from "../tools/render";
import { runProgram } from "./harness";

const dev = readStackConfig("dev");
/** The logical name of control-plane instance i (core/plan.ts). */
const CP = (i: number) => `${dev.config.clusterName}-cp-${i}`;
let run: ProgramRun;
let lab: Lab;
let cluster: LabCluster;
let first: StepResult[];
/** Every host invariant a step broke, by step and host. */
const violations: string[] = [];

/** What a failed step printed, for the assertion's message. */
const failures = (results: StepResult[]) => results.filter((r) => r.status !== 0).map((r) => `${r.action} ${r.step} on ${r.host}: ${r.output.slice(-6000)}`);

/** The dev stack's program, as `pulumi up` runs it after the last successful run, replacing the instances named. */
const program = (replace: string[] = []) =>
    runProgram(dev.config, { regionZones: zonesOf(dev.region), replacements: { replace }, previousOutputs: cluster?.previous?.outputs });

beforeAll(async () => {
    const unavailable = labUnavailable();
    if (unavailable) throw new Error(`the lab cannot run here: ${unavailable}`);
    resetState();
    run = await program();
    const agent = nodeAgent();
    lab = new Lab(agent);
    cluster = new LabCluster(lab, agent);
    // The hosts' directory modes as booted, before any step runs.
    cluster.boot(run, CURRENT.kubernetes);
    const hosts = [...cluster.hostOfInstance.values()];
    const modes = new Map(hosts.map((h) => [h, systemDirectoryModes(lab, h)]));
    first = cluster.up(run, CURRENT.kubernetes, (step) => {
        for (const h of hosts) for (const v of invariantViolations(lab, h, modes.get(h)!)) violations.push(`after ${step.step}, on ${h}: ${v}`);
    }).steps;
    cluster.addDeployer(run, CURRENT);
}, 900_000);

afterAll(() => lab?.stop());

const kubectl = (args: string) => cluster.deployer(`kubectl --request-timeout=20s ${args}`);
const planned = (of = run) => of.ofType("aws:ec2/instance:Instance").map((i) => i.state.privateDns as string);
/** etcdctl on node 0's member (node 0 stays throughout), as the healthcheck client. */
const etcdctl = (of: ProgramRun, args: string) =>
    kubectl(
        `exec -n kube-system etcd-${of.ofType("aws:ec2/instance:Instance").find((i) => i.name === CP(0))!.state.privateDns} -- etcdctl --endpoints=https://127.0.0.1:2379 ` +
            `--cacert=/etc/kubernetes/pki/etcd/ca.crt --cert=/etc/kubernetes/pki/etcd/healthcheck-client.crt --key=/etc/kubernetes/pki/etcd/healthcheck-client.key ${args}`,
    );

/** etcd holds exactly the planned members, all voting and healthy. */
function expectPlannedMembers(of: ProgramRun): void {
    const members = etcdctl(of, "member list -w json");
    expect(members.status).toBe(0);
    const list = (JSON.parse(members.stdout).members as { name: string; isLearner?: boolean }[]).map((m) => `${m.name} ${m.isLearner ? "learner" : "voter"}`);
    expect(list.sort()).toEqual(
        planned(of)
            .map((n) => `${n} voter`)
            .sort(),
    );
    const health = etcdctl(of, "endpoint health --cluster -w json");
    expect(health.status).toBe(0);
    expect((JSON.parse(health.stdout) as { health: boolean }[]).map((h) => h.health)).toEqual(planned(of).map(() => true));
}

const expectReady = () => {
    const ready = kubectl("get --raw /readyz");
    expect([ready.status, ready.stdout.trim()]).toEqual([0, "ok"]);
};

describe(`the dev stack on lab hosts: Kubernetes ${CURRENT.kubernetes}, stacked etcd ${CURRENT.etcd}`, () => {
    it("every step the program renders succeeds, from the first node's preparation to the API check through the load balancer", () => {
        expect(failures(first)).toEqual([]);
        expect(first.map((r) => `${r.action} ${r.step}`)).toEqual(commandsByDependency(run).map((c) => `create ${c.name}`));
    });

    it("after every step, on every host: system directories keep their modes and owners, no secret is readable by others, kubeadm-ha's logs are root's", () => {
        expect(violations).toEqual([]);
    });

    it("the API answers /readyz through the load balancer's name", expectReady);

    it("lists every planned control-plane node, each a control-plane member running the default release", () => {
        const nodes = kubectl(
            `get nodes -l node-role.kubernetes.io/control-plane -o jsonpath='{range .items[*]}{.metadata.name} {.status.nodeInfo.kubeletVersion}{"\\n"}{end}'`,
        );
        expect(nodes.status).toBe(0);
        expect(nodes.stdout.trim().split("\n").sort()).toEqual(
            planned()
                .map((n) => `${n} v${CURRENT.kubernetes}`)
                .sort(),
        );
    });

    it("etcd has exactly the planned members, all voting and healthy", () => expectPlannedMembers(run));

    it.each(["kube-controller-manager", "kube-scheduler"])("the %s Lease is held by one of the planned nodes", (name) => {
        const holder = kubectl(`-n kube-system get lease ${name} -o jsonpath='{.spec.holderIdentity}'`);
        expect(holder.status).toBe(0);
        expect(planned()).toContain(holder.stdout.split("_")[0]);
    });

    it("the API server's certificate verifies against the program's CA for the load balancer's name", () => {
        const name = LabCluster.endpointName(run);
        const check = cluster.deployer(
            "kubectl config view --raw -o jsonpath='{.clusters[0].cluster.certificate-authority-data}' | base64 -d >/tmp/ca.crt && " +
                `openssl s_client -connect ${name}:6443 -servername ${name} -CAfile /tmp/ca.crt -verify_hostname ${name} -verify_return_error </dev/null 2>&1 | grep -o 'Verify return code: .*' | sort -u`,
        );
        expect([check.stdout.trim(), check.stderr]).toEqual(["Verify return code: 0 (ok)", ""]);
    });

    it("every step run again changes nothing: no init, join or reset, and no control-plane container restarted", () => {
        const started = () =>
            kubectl(
                `-n kube-system get pods -l tier=control-plane -o jsonpath='{range .items[*]}{.metadata.name} {.status.containerStatuses[0].state.running.startedAt} {.metadata.annotations.kubernetes\\.io/config\\.hash}{"\\n"}{end}'`,
            ).stdout;
        const before = started();
        // Every command's create again, as a new stack over the same hosts would run them.
        const again = cluster.applySteps(undefined, run).steps;
        expect(failures(again)).toEqual([]);
        const printed = again.map((r) => r.output).join("\n");
        expect(printed).not.toMatch(/running kubeadm init|joining .* to the control plane|kubeadm reset/);
        expect(started()).toBe(before);
    }, 600_000);
});

describe("day-2 programs on lab hosts, run by the lab's systemctl from the units the steps installed", () => {
    it("the first up's etcd backup wrote a snapshot on every node that the release's etcdutl reads", () => {
        for (const host of cluster.hostOfInstance.values()) {
            const status = lab.run(
                host,
                `set -e; f=$(ls -t ${BACKUP_DIR}/*.db | head -n 1); stat -c '%a %U' "$f"; ${binary("etcdutl")} snapshot status "$f" -w json`,
            );
            expect([host, status.status, status.stderr]).toEqual([host, 0, ""]);
            const [mode, ...json] = status.stdout.trim().split("\n");
            expect([host, mode]).toEqual([host, "600 root"]);
            expect(JSON.parse(json.join("\n")).totalKey).toBeGreaterThan(100);
        }
    });

    it("kubeadm-ha-renew-certificates now renews kubeadm's certificates on a node and restarts its static pods, which come back healthy", () => {
        const host = cluster.hostOf(run, CP(1));
        const node = run.ofType("aws:ec2/instance:Instance").find((i) => i.name === CP(1))!.state.privateDns as string;
        const serial = () => lab.run(host, "openssl x509 -in /etc/kubernetes/pki/apiserver.crt -noout -serial").stdout;
        const started = () =>
            kubectl(
                `-n kube-system get pods --field-selector spec.nodeName=${node} -l tier=control-plane -o jsonpath='{range .items[*]}{.metadata.name} {.status.containerStatuses[0].state.running.startedAt}{"\\n"}{end}'`,
            ).stdout.trim();
        const before = { serial: serial(), started: started() };
        const renewed = lab.run(host, "kubeadm-ha-renew-certificates now");
        expect(renewed.status === 0 ? "" : `${renewed.stdout}${renewed.stderr}`.slice(-6000)).toBe("");
        expect(serial()).not.toBe(before.serial);
        // Every control-plane pod of the node started again, one at a time, each healthy before the next.
        expect(renewed.stdout.match(/restarting \S+ to load the renewed certificates/g)).toEqual(
            ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"].map((p) => `restarting ${p} to load the renewed certificates`),
        );
        const now = started().split("\n");
        for (const line of before.started.split("\n")) expect(now).not.toContain(line);
        expectReady();
        expectPlannedMembers(run);
    }, 600_000);
});

describe("later ups on lab hosts, through the lifecycle engine", () => {
    /** One `pulumi up` of the dev stack on the lab that must succeed, every step on a live host, leaving the plan in place. */
    async function upReplacing(instance: string): Promise<{ next: ProgramRun; steps: StepResult[] }> {
        const next = await program([instance]);
        const { steps } = cluster.up(next, CURRENT.kubernetes);
        expect(failures(steps)).toEqual([]);
        expectReady();
        expectPlannedMembers(next);
        const nodes = kubectl("get nodes -o jsonpath='{.items[*].metadata.name}'");
        expect(nodes.stdout.split(" ").sort()).toEqual(planned(next).sort());
        return { next, steps };
    }

    it("replacing node 1 while its old host runs: the new node joins, the old member and Node go, the old instance is terminated", async () => {
        const old = cluster.hostOf(cluster.previous!, CP(1));
        const { next, steps } = await upReplacing(CP(1));
        expect(cluster.hostOf(next, CP(1))).not.toBe(old);
        expect(steps.filter((s) => s.dialSeconds > 0)).toEqual([]);
        expect(lab.alive(old)).toBe(false);
    }, 900_000);

    it("replacing node 1 after its host died: no step waits on the dead host, membership is the plan", async () => {
        const dead = cluster.hostOf(cluster.previous!, CP(1));
        lab.kill(dead);
        const { steps } = await upReplacing(CP(1));
        expect(steps.filter((s) => s.host === dead || s.dialSeconds > 0).map((s) => `${s.action} ${s.step}`)).toEqual([]);
    }, 900_000);
});
