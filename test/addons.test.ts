/** Add-ons through @pulumi/kubernetes: the provider, the pod network and the alerting stack. */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parse, parseAllDocuments, stringify } from "yaml";
import { ProgramRun, runProgram, UNKNOWN } from "./harness";

const RELEASE = "kubernetes:helm.sh/v3:Release";
const PROVIDER = "pulumi:providers:kubernetes";

const kubernetesResources = (run: ProgramRun) => run.resources.filter((r) => r.type.startsWith("kubernetes:"));

describe.each([
    ["update", false],
    ["preview", true],
])("add-ons (%s)", (_mode, preview) => {
    let run: ProgramRun;
    beforeAll(async () => {
        run = await runProgram({ monitoring: "true" }, { preview });
    });

    it("send no Kubernetes resource except through the stack's provider", () => {
        expect(run.ofType(PROVIDER).map((p) => p.name)).toEqual(["kubeadm-ha-k8s"]);
        expect(kubernetesResources(run).length).toBe(3);
        for (const r of kubernetesResources(run)) expect([r.name, r.provider]).toEqual([r.name, "kubeadm-ha-k8s"]);
    });

    it("build the provider from the secret kubeconfig, after every join and the API gate", () => {
        const [provider] = run.ofType(PROVIDER);
        // In preview the kubeconfig waits on the load balancer's name: unknown, so nothing to leak.
        expect(provider.secretInputs.includes("kubeconfig") || (preview && provider.inputs.kubeconfig === UNKNOWN)).toBe(true);
        expect(run.waitsFor("kubeadm-ha-k8s", "kubeadm-ha-api-reachable")).toBe(true);
        for (const step of ["kubeadm-ha-cluster-init", "kubeadm-ha-cp-0-member", "kubeadm-ha-cp-1-member", "kubeadm-ha-cp-2-member"])
            expect(run.waitsFor("kubeadm-ha-k8s", step)).toBe(true);
        for (const r of kubernetesResources(run)) expect(run.waitsFor(r.name, "kubeadm-ha-api-reachable")).toBe(true);
    });

    it("install the alerting stack after the pod network, and the control-plane rules after the stack", () => {
        const stack = run.named("kube-prometheus-stack");
        expect(stack.inputs).toMatchObject({
            chart: "kube-prometheus-stack",
            version: "88.6.5",
            repositoryOpts: { repo: "https://prometheus-community.github.io/helm-charts" },
            namespace: "monitoring",
        });
        expect(run.waitsFor("kube-prometheus-stack", "calico")).toBe(true);
        const rules = run.named("kubeadm-ha-control-plane-rules");
        expect(rules.inputs.metadata.labels).toEqual({ release: "kube-prometheus-stack" });
        expect(rules.inputs.spec.groups).toEqual(parse(readFileSync(join(__dirname, "..", "monitoring", "control-plane.rules.yaml"), "utf8")).groups);
        expect(run.waitsFor("kubeadm-ha-control-plane-rules", "kube-prometheus-stack")).toBe(true);
        expect(stack.inputs.values.prometheus.prometheusSpec.tolerations).toEqual([
            { key: "node-role.kubernetes.io/control-plane", operator: "Exists", effect: "NoSchedule" },
        ]);
    });

    it("expose the metrics kubeadm binds to loopback, inside the security group", () => {
        if (!preview) {
            const [, cluster] = parseAllDocuments(run.named("kubeadm-ha-cluster-init").inputs.stdin as string).map((d) => d.toJS());
            expect(cluster.controllerManager).toEqual({ extraArgs: [{ name: "bind-address", value: "0.0.0.0" }] });
            expect(cluster.scheduler).toEqual({ extraArgs: [{ name: "bind-address", value: "0.0.0.0" }] });
            expect(cluster.etcd.local.extraArgs).toEqual([{ name: "listen-metrics-urls", value: "http://0.0.0.0:2381" }]);
        }
        expect(run.named("kubeadm-ha-control-plane-etcd-metrics").inputs).toMatchObject({ fromPort: 2381, toPort: 2381, ipProtocol: "tcp" });
        expect(run.named("kubeadm-ha-control-plane-etcd-metrics").inputs.cidrIpv4).toBeUndefined();
    });

    it("report the add-ons' names and versions as a stack output", () => {
        expect(run.outputs.addons).toEqual([
            { name: "calico", chart: "tigera-operator", version: "v3.31.7", namespace: "tigera-operator" },
            { name: "kube-prometheus-stack", chart: "kube-prometheus-stack", version: "88.6.5", namespace: "monitoring" },
        ]);
    });
});

describe("the cni choice", () => {
    it.each([
        ["calico", "tigera-operator", "v3.31.7", (values: any) => values.installation.calicoNetwork.ipPools[0]],
        ["cilium", "cilium", "1.18.6", (values: any) => values.ipam.operator.clusterPoolIPv4PodCIDRList],
    ])("%s installs its official chart with the pod CIDR", async (cni, chart, version, podRange) => {
        const run = await runProgram({ cni, podCidr: "172.20.0.0/16" });
        const releases = run.ofType(RELEASE);
        expect(releases.map((r) => [r.name, r.inputs.chart, r.inputs.version])).toEqual([[cni, chart, version]]);
        expect(JSON.stringify(podRange(releases[0].inputs.values))).toContain("172.20.0.0/16");
    });

    it("none installs no chart, and monitoring off installs no alerting stack", async () => {
        const run = await runProgram({ cni: "none" });
        expect(kubernetesResources(run)).toEqual([]);
        expect(run.outputs.addons).toEqual([]);
        // No overlay ports are opened for a pod network the program does not install.
        expect(run.resources.filter((r) => /-(calico|cilium)-\d+$/.test(r.name))).toEqual([]);
    });

    it("opens Cilium's VXLAN and health ports between nodes", async () => {
        const run = await runProgram({ cni: "cilium" });
        expect(run.named("kubeadm-ha-control-plane-cilium-8472").inputs).toMatchObject({ ipProtocol: "udp", fromPort: 8472 });
        expect(run.named("kubeadm-ha-control-plane-cilium-4240").inputs).toMatchObject({ ipProtocol: "tcp", fromPort: 4240 });
    });
});

/**
 * Whether a change of the provider's inputs replaces it, as pulumi-kubernetes decides it
 * (provider/pkg/provider/provider.go, DiffConfig), for the inputs this program sets: a changed
 * clusterIdentifier replaces; one that stays the same cancels every other replacement; otherwise an
 * unknown kubeconfig replaces, and a known one replaces when its active cluster (server, CA) changes.
 */
function replacesProvider(olds: Record<string, unknown>, news: Record<string, unknown>): boolean {
    const keys = [...new Set([...Object.keys(olds), ...Object.keys(news)])];
    if (keys.every((k) => olds[k] === news[k])) return false;
    const id = "clusterIdentifier";
    const replaces: string[] = [];
    // diff.Updated: present before and after, different (an unknown new value is different).
    if (olds[id] !== undefined && news[id] !== undefined && olds[id] !== news[id]) replaces.push(id);
    // diff.Same && news.HasValue: the deferred reset of Replaces.
    const sameIdentifier = olds[id] !== undefined && olds[id] === news[id];
    const answer = () => !sameIdentifier && replaces.length > 0;
    if (news.kubeconfig === UNKNOWN) {
        replaces.push("kubeconfig");
        return answer();
    }
    const activeCluster = (kubeconfig: unknown) => {
        const config = parse(kubeconfig as string);
        const context = config.contexts.find((c: any) => c.name === config["current-context"]).context;
        return JSON.stringify(config.clusters.find((c: any) => c.name === context.cluster).cluster);
    };
    if (olds.kubeconfig !== news.kubeconfig && activeCluster(olds.kubeconfig) !== activeCluster(news.kubeconfig)) replaces.push("kubeconfig");
    return answer();
}

describe("the Kubernetes provider's identity", () => {
    let update: ProgramRun;
    let preview: ProgramRun;
    const provider = (run: ProgramRun) => run.ofType(PROVIDER)[0].inputs;
    beforeAll(async () => {
        update = await runProgram({});
        preview = await runProgram({}, { preview: true });
    });

    it("is a cluster identifier known at preview, when the kubeconfig is not", () => {
        expect(provider(update).clusterIdentifier).toBe("kubeadm-ha/kubeadm-ha");
        expect(provider(preview).kubeconfig).toBe(UNKNOWN);
        expect(provider(preview).clusterIdentifier).toBe(provider(update).clusterIdentifier);
    });

    it("keeps the provider, and every release on it, when the admin certificate is re-issued", () => {
        // In preview a re-issued certificate leaves the kubeconfig unknown, as here.
        expect(replacesProvider(provider(update), provider(preview))).toBe(false);
        // In the update a new client certificate and key, and no other change, keep it too.
        const config = parse(provider(update).kubeconfig);
        config.users[0].user["client-certificate-data"] = Buffer.from("another certificate").toString("base64");
        const reissued = { ...provider(update), kubeconfig: stringify(config) };
        expect(replacesProvider(provider(update), reissued)).toBe(false);
        // Without the identifier, the preview would replace it (and fail on the fixed release names).
        const withoutIdentifier = (inputs: Record<string, unknown>) => Object.fromEntries(Object.entries(inputs).filter(([k]) => k !== "clusterIdentifier"));
        expect(replacesProvider(withoutIdentifier(provider(update)), withoutIdentifier(provider(preview)))).toBe(true);
    });

    it("replaces the provider for another cluster: a new cluster name", async () => {
        const renamed = await runProgram({ clusterName: "other" }, { preview: true });
        expect(provider(renamed).clusterIdentifier).toBe("kubeadm-ha/other");
        expect(replacesProvider(provider(update), provider(renamed))).toBe(true);
    });
});
