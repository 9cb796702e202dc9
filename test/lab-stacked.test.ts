/**
 * The program's own steps, for real, on lab hosts (lab/): the dev stack's three control-plane nodes
 * with stacked etcd run every remote command the program renders, in the engine's order, with real
 * kubeadm, etcd and control-plane binaries of the default release, behind HAProxy health-checking as
 * the NLB does. Then, from a deployer on the lab's network with the admin kubeconfig the program
 * outputs, through the load balancer's name: the API is ready, every planned node is listed, etcd has
 * exactly the planned members, all voting, the controller-manager and scheduler hold their leases,
 * and the API server's certificate verifies against the program's CA for that name. After every step,
 * on every host, the host invariants hold (lab/invariants.ts). Every step run again changes nothing.
 */
import { Lab, labUnavailable } from "../lab/hosts";
import { commandsInOrder, LabCluster, StepResult } from "../lab/cluster";
import { invariantViolations, systemDirectoryModes } from "../lab/invariants";
import { CURRENT, nodeAgent } from "../lab/releases";
import { ProgramRun, resetState, zonesOf } from "../tools/offline/engine";
import { readStackConfig } from "../tools/render";
import { runProgram } from "./harness";

let run: ProgramRun;
let lab: Lab;
let cluster: LabCluster;
let first: StepResult[];
/** Every host invariant a step broke, by step and host. */
const violations: string[] = [];

/** What a failed step printed, for the assertion's message. */
const failures = (results: StepResult[]) =>
    results.filter((r) => r.status !== 0).map((r) => `${r.step} on ${r.host}: ${r.stdout.slice(-3000)}${r.stderr.slice(-3000)}`);

beforeAll(async () => {
    const unavailable = labUnavailable();
    if (unavailable) throw new Error(`the lab cannot run here: ${unavailable}`);
    resetState();
    const dev = readStackConfig("dev");
    run = await runProgram(dev.config, { regionZones: zonesOf(dev.region) });
    const agent = nodeAgent();
    lab = new Lab(agent);
    cluster = new LabCluster(lab, agent);
    cluster.boot(run, CURRENT.kubernetes);
    cluster.startLoadBalancer(run);
    cluster.addDeployer(run, CURRENT);
    const hosts = [...cluster.hostOfInstance.values()];
    const modes = new Map(hosts.map((h) => [h, systemDirectoryModes(lab, h)]));
    first = cluster.runSteps(run, (step) => {
        for (const h of hosts) for (const v of invariantViolations(lab, h, modes.get(h)!)) violations.push(`after ${step.step}, on ${h}: ${v}`);
    });
}, 900_000);

afterAll(() => lab?.stop());

const kubectl = (args: string) => cluster.deployer(`kubectl --request-timeout=20s ${args}`);
const planned = () => run.ofType("aws:ec2/instance:Instance").map((i) => i.state.privateDns as string);

describe(`the dev stack on lab hosts: Kubernetes ${CURRENT.kubernetes}, stacked etcd ${CURRENT.etcd}`, () => {
    it("every step the program renders succeeds, from the first node's preparation to the API check through the load balancer", () => {
        expect(failures(first)).toEqual([]);
        expect(first.map((r) => r.step)).toEqual(commandsInOrder(run).map((c) => c.name));
    });

    it("after every step, on every host: system directories keep their modes and owners, no secret is readable by others, kubeadm-ha's logs are root's", () => {
        expect(violations).toEqual([]);
    });

    it("the API answers /readyz through the load balancer's name", () => {
        const ready = kubectl("get --raw /readyz");
        expect([ready.status, ready.stdout.trim()]).toEqual([0, "ok"]);
    });

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

    it("etcd has exactly the planned members, all voting and healthy", () => {
        const etcdctl =
            "exec -n kube-system etcd-" +
            planned()[0] +
            " -- etcdctl --endpoints=https://127.0.0.1:2379 --cacert=/etc/kubernetes/pki/etcd/ca.crt --cert=/etc/kubernetes/pki/etcd/healthcheck-client.crt --key=/etc/kubernetes/pki/etcd/healthcheck-client.key";
        const members = kubectl(`${etcdctl} member list -w json`);
        expect(members.status).toBe(0);
        const list = (JSON.parse(members.stdout).members as { name: string; isLearner?: boolean }[]).map(
            (m) => `${m.name} ${m.isLearner ? "learner" : "voter"}`,
        );
        expect(list.sort()).toEqual(
            planned()
                .map((n) => `${n} voter`)
                .sort(),
        );
        const health = kubectl(`${etcdctl} endpoint health --cluster -w json`);
        expect(health.status).toBe(0);
        expect((JSON.parse(health.stdout) as { health: boolean }[]).map((h) => h.health)).toEqual([true, true, true]);
    });

    it.each(["kube-controller-manager", "kube-scheduler"])("the %s Lease is held by one of the planned nodes", (name) => {
        const holder = kubectl(`-n kube-system get lease ${name} -o jsonpath='{.spec.holderIdentity}'`);
        expect(holder.status).toBe(0);
        expect(planned()).toContain(holder.stdout.split("_")[0]);
    });

    it("the API server's certificate verifies against the program's CA for the load balancer's name", () => {
        const name = LabCluster.endpointName(run);
        const check = cluster.deployer(
            "kubectl config view --raw -o jsonpath='{.clusters[0].cluster.certificate-authority-data}' | base64 -d >/tmp/ca.crt && " +
                `openssl s_client -connect ${name}:6443 -servername ${name} -CAfile /tmp/ca.crt -verify_hostname ${name} -verify_return_error </dev/null 2>&1 | grep 'Verify return code' | sort -u`,
        );
        expect([check.stdout.trim(), check.stderr]).toEqual(["Verify return code: 0 (ok)", ""]);
    });

    it("every step run again changes nothing: no init, join or reset, and no control-plane container restarted", () => {
        const started = () =>
            kubectl(
                `-n kube-system get pods -l tier=control-plane -o jsonpath='{range .items[*]}{.metadata.name} {.status.containerStatuses[0].state.running.startedAt} {.metadata.annotations.kubernetes\\.io/config\\.hash}{"\\n"}{end}'`,
            ).stdout;
        const before = started();
        const again = cluster.runSteps(run);
        expect(failures(again)).toEqual([]);
        const printed = again.map((r) => r.stdout + r.stderr).join("\n");
        expect(printed).not.toMatch(/running kubeadm init|joining .* to the control plane|kubeadm reset/);
        expect(started()).toBe(before);
    }, 600_000);
});
