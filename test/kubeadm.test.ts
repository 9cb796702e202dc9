import { parseAllDocuments } from "yaml";
import { ClusterSettings, initDocuments, joinDocuments, renderDocuments } from "../core/kubeadm";
import { validateDocument } from "./schemas/kubeadm-v1beta4";

const CLUSTER: ClusterSettings = {
    clusterName: "demo",
    kubernetesVersion: { minor: "1.34" },
    controlPlaneEndpoint: "demo-nlb.elb.us-east-1.amazonaws.com:6443",
    podCidr: "192.168.0.0/16",
    serviceCidr: "10.96.0.0/12",
};
const NODE = { nodeName: "ip-10-0-0-10.ec2.internal", nodeIp: "10.0.0.10" };
const TOKEN = "abcdef.0123456789abcdef";
const HASH = `sha256:${"0".repeat(64)}`;

function parsed(yaml: string): Record<string, unknown>[] {
    return parseAllDocuments(yaml).map((d) => d.toJS());
}

describe("kubeadm documents against the v1beta4 schema", () => {
    const variants: [string, ClusterSettings][] = [
        ["stacked etcd, newest patch", CLUSTER],
        [
            "external etcd, pinned release",
            { ...CLUSTER, kubernetesVersion: { minor: "1.34", patch: "1.34.2" }, externalEtcdEndpoints: ["https://10.0.0.20:2379", "https://10.0.16.21:2379"] },
        ],
    ];

    it.each(variants)("init documents are valid with %s", (_label, cluster) => {
        const docs = parsed(renderDocuments(initDocuments(cluster, NODE, TOKEN)));
        expect(docs).toHaveLength(3);
        expect(docs.flatMap(validateDocument)).toEqual([]);
    });

    it.each(variants)("join documents are valid with %s", (_label, cluster) => {
        const docs = parsed(renderDocuments(joinDocuments(cluster, NODE, TOKEN, HASH)));
        expect(docs.flatMap(validateDocument)).toEqual([]);
    });

    it("points kubeadm at external etcd with kubeadm's client certificate paths", () => {
        const [, cluster] = parsed(renderDocuments(initDocuments(variants[1][1], NODE, TOKEN)));
        expect(cluster.etcd).toEqual({
            external: {
                endpoints: ["https://10.0.0.20:2379", "https://10.0.16.21:2379"],
                caFile: "/etc/kubernetes/pki/etcd/ca.crt",
                certFile: "/etc/kubernetes/pki/apiserver-etcd-client.crt",
                keyFile: "/etc/kubernetes/pki/apiserver-etcd-client.key",
            },
        });
        expect(cluster.kubernetesVersion).toBe("v1.34.2");
    });

    it("resolves a bare minor to kubeadm's stable label for it", () => {
        expect(parsed(renderDocuments(initDocuments(CLUSTER, NODE, TOKEN)))[1].kubernetesVersion).toBe("stable-1.34");
    });

    it("rejects what kubeadm's strict decoding rejects", () => {
        expect(validateDocument({ apiVersion: "kubeadm.k8s.io/v1beta4", kind: "ClusterConfiguration", controlPlaneEndpiont: "x" })).toEqual([
            "$.controlPlaneEndpiont: unknown field",
        ]);
        // v1beta3's map form of extraArgs is gone in v1beta4.
        expect(
            validateDocument({ apiVersion: "kubeadm.k8s.io/v1beta4", kind: "ClusterConfiguration", apiServer: { extraArgs: { "audit-log-maxage": "30" } } }),
        ).toEqual(["$.apiServer.extraArgs: expected a list"]);
        expect(validateDocument({ apiVersion: "kubeadm.k8s.io/v1beta4", kind: "JoinConfiguration" })).toEqual(["$.discovery: required field missing"]);
        expect(validateDocument({ apiVersion: "kubeadm.k8s.io/v1beta3", kind: "InitConfiguration" })).toEqual([
            "$: unknown apiVersion/kind kubeadm.k8s.io/v1beta3/InitConfiguration",
        ]);
    });
});
