/**
 * kubeadm configuration documents as typed objects, serialised with a YAML library.
 *
 * Field names follow the kubeadm.k8s.io/v1beta4 API
 * (https://kubernetes.io/docs/reference/config-api/kubeadm-config.v1beta4/ and
 * kubernetes/kubernetes cmd/kubeadm/app/apis/kubeadm/v1beta4/types.go). kubeadm decodes strictly, so the
 * interfaces below declare only fields that exist there; an unknown field is a compile error here
 * instead of a failed `kubeadm init` on a node.
 */
import { stringify } from "yaml";
import { KUBEADM_ENCRYPTION_ALGORITHM } from "./pki";
import { PORTS } from "./plan";

export const KUBEADM_API_VERSION = "kubeadm.k8s.io/v1beta4";
export const KUBELET_API_VERSION = "kubelet.config.k8s.io/v1beta1";
export const CRI_SOCKET = "unix:///var/run/containerd/containerd.sock";
export const DNS_DOMAIN = "cluster.local";
export const PKI_DIR = "/etc/kubernetes/pki";
/** A join usually finishes in minutes; the token only has to outlive it (renewed before each join). */
export const BOOTSTRAP_TOKEN_TTL = "1h0m0s";

/** v1beta4 `Arg`: extra arguments are a list of name/value pairs. */
export interface Arg {
    name: string;
    value: string;
}

export interface APIEndpoint {
    advertiseAddress?: string;
    bindPort?: number;
}

export interface Taint {
    key: string;
    value?: string;
    effect: "NoSchedule" | "PreferNoSchedule" | "NoExecute";
}

export interface NodeRegistrationOptions {
    name?: string;
    criSocket?: string;
    /** No omitempty upstream: absent means "the default control-plane taint". */
    taints?: Taint[] | null;
    kubeletExtraArgs?: Arg[];
    ignorePreflightErrors?: string[];
    imagePullPolicy?: "Always" | "IfNotPresent" | "Never";
    imagePullSerial?: boolean;
}

export interface BootstrapToken {
    token: string;
    description?: string;
    ttl?: string;
    usages?: string[];
    groups?: string[];
}

export interface Timeouts {
    controlPlaneComponentHealthCheck?: string;
    kubeletHealthCheck?: string;
    kubernetesAPICall?: string;
    etcdAPICall?: string;
    tlsBootstrap?: string;
    discovery?: string;
    upgradeManifests?: string;
}

export interface InitConfiguration {
    apiVersion: typeof KUBEADM_API_VERSION;
    kind: "InitConfiguration";
    bootstrapTokens?: BootstrapToken[];
    nodeRegistration?: NodeRegistrationOptions;
    localAPIEndpoint?: APIEndpoint;
    skipPhases?: string[];
    timeouts?: Timeouts;
}

export interface ControlPlaneComponent {
    extraArgs?: Arg[];
}

export interface APIServer extends ControlPlaneComponent {
    certSANs?: string[];
}

export interface LocalEtcd {
    dataDir: string;
    extraArgs?: Arg[];
    serverCertSANs?: string[];
    peerCertSANs?: string[];
}

export interface ExternalEtcd {
    endpoints: string[];
    caFile: string;
    certFile: string;
    keyFile: string;
}

export interface ClusterConfiguration {
    apiVersion: typeof KUBEADM_API_VERSION;
    kind: "ClusterConfiguration";
    clusterName?: string;
    kubernetesVersion?: string;
    controlPlaneEndpoint?: string;
    certificatesDir?: string;
    encryptionAlgorithm?: "RSA-2048" | "RSA-3072" | "RSA-4096" | "ECDSA-P256";
    networking?: { serviceSubnet?: string; podSubnet?: string; dnsDomain?: string };
    etcd?: { local?: LocalEtcd; external?: ExternalEtcd };
    apiServer?: APIServer;
    controllerManager?: ControlPlaneComponent;
    scheduler?: ControlPlaneComponent;
}

export interface BootstrapTokenDiscovery {
    token: string;
    apiServerEndpoint?: string;
    caCertHashes?: string[];
}

export interface JoinConfiguration {
    apiVersion: typeof KUBEADM_API_VERSION;
    kind: "JoinConfiguration";
    nodeRegistration?: NodeRegistrationOptions;
    discovery: { bootstrapToken?: BootstrapTokenDiscovery };
    controlPlane?: { localAPIEndpoint?: APIEndpoint };
    timeouts?: Timeouts;
}

/** kubelet.config.k8s.io/v1beta1, handed to kubeadm init next to the kubeadm documents. */
export interface KubeletConfiguration {
    apiVersion: typeof KUBELET_API_VERSION;
    kind: "KubeletConfiguration";
    cgroupDriver: "systemd" | "cgroupfs";
}

export type KubeadmDocument = InitConfiguration | ClusterConfiguration | JoinConfiguration | KubeletConfiguration;

export interface ControlPlaneNodeIdentity {
    nodeName: string;
    nodeIp: string;
}

export interface ClusterSettings {
    clusterName: string;
    /** "1.34.2" pins a release; otherwise kubeadm resolves the newest patch of `minor`. */
    kubernetesVersion: { minor: string; patch?: string };
    /** "<nlb-dns>:6443" */
    controlPlaneEndpoint: string;
    podCidr: string;
    serviceCidr: string;
    /** External etcd client URLs; undefined means stacked etcd. */
    externalEtcdEndpoints?: string[];
    /**
     * Serve controller-manager, scheduler and stacked etcd metrics on the node's addresses instead of
     * kubeadm's loopback default, so Prometheus can scrape them (security groups keep them inside).
     */
    exposeMetrics?: boolean;
}

/** Where the apiserver's client certificate for external etcd is placed (kubeadm's file names). */
export const EXTERNAL_ETCD_FILES = {
    caFile: `${PKI_DIR}/etcd/ca.crt`,
    certFile: `${PKI_DIR}/apiserver-etcd-client.crt`,
    keyFile: `${PKI_DIR}/apiserver-etcd-client.key`,
} as const;

function nodeRegistration(node: ControlPlaneNodeIdentity): NodeRegistrationOptions {
    return {
        name: node.nodeName,
        criSocket: CRI_SOCKET,
        kubeletExtraArgs: [{ name: "node-ip", value: node.nodeIp }],
    };
}

export function clusterConfiguration(cluster: ClusterSettings): ClusterConfiguration {
    const { minor, patch } = cluster.kubernetesVersion;
    return {
        apiVersion: KUBEADM_API_VERSION,
        kind: "ClusterConfiguration",
        clusterName: cluster.clusterName,
        // An exact release is reproducible; "stable-1.34" asks dl.k8s.io for the newest patch of the minor.
        kubernetesVersion: patch ? `v${patch}` : `stable-${minor}`,
        controlPlaneEndpoint: cluster.controlPlaneEndpoint,
        certificatesDir: PKI_DIR,
        encryptionAlgorithm: KUBEADM_ENCRYPTION_ALGORITHM,
        networking: { serviceSubnet: cluster.serviceCidr, podSubnet: cluster.podCidr, dnsDomain: DNS_DOMAIN },
        etcd: cluster.externalEtcdEndpoints
            ? { external: { endpoints: cluster.externalEtcdEndpoints, ...EXTERNAL_ETCD_FILES } }
            : {
                  local: {
                      dataDir: "/var/lib/etcd",
                      ...(cluster.exposeMetrics ? { extraArgs: [{ name: "listen-metrics-urls", value: `http://0.0.0.0:${PORTS.etcdMetrics}` }] } : {}),
                  },
              },
        apiServer: {
            certSANs: [cluster.controlPlaneEndpoint.replace(/:\d+$/, "")],
        },
        ...(cluster.exposeMetrics
            ? {
                  controllerManager: { extraArgs: [{ name: "bind-address", value: "0.0.0.0" }] },
                  scheduler: { extraArgs: [{ name: "bind-address", value: "0.0.0.0" }] },
              }
            : {}),
    };
}

export const KUBELET_CONFIGURATION: KubeletConfiguration = {
    apiVersion: KUBELET_API_VERSION,
    kind: "KubeletConfiguration",
    cgroupDriver: "systemd",
};

/**
 * kubeadm's preflight check that /var/lib/etcd is empty (DirAvailableCheck names itself
 * "DirAvailable-" + the path with '/' turned into '-'). A restore from a snapshot fills that directory
 * just before init, on purpose.
 */
export const RESTORED_ETCD_PREFLIGHT = "DirAvailable--var-lib-etcd";

/**
 * The documents `kubeadm init --config` reads on the first control-plane node. With `restoredEtcd`,
 * init runs against etcd data restored from a snapshot.
 */
export function initDocuments(cluster: ClusterSettings, node: ControlPlaneNodeIdentity, token: string, restoredEtcd = false): KubeadmDocument[] {
    const init: InitConfiguration = {
        apiVersion: KUBEADM_API_VERSION,
        kind: "InitConfiguration",
        bootstrapTokens: [
            {
                token,
                description: "kubeadm-ha control-plane joins",
                ttl: BOOTSTRAP_TOKEN_TTL,
                usages: ["signing", "authentication"],
                groups: ["system:bootstrappers:kubeadm:default-node-token"],
            },
        ],
        nodeRegistration: { ...nodeRegistration(node), ...(restoredEtcd ? { ignorePreflightErrors: [RESTORED_ETCD_PREFLIGHT] } : {}) },
        localAPIEndpoint: { advertiseAddress: node.nodeIp, bindPort: PORTS.apiServer },
    };
    return [init, clusterConfiguration(cluster), KUBELET_CONFIGURATION];
}

/**
 * The document `kubeadm join --config` reads on every other control-plane node. No certificateKey:
 * the shared CAs are placed beforehand (kubeadm's manual certificate distribution).
 */
export function joinDocuments(cluster: ClusterSettings, node: ControlPlaneNodeIdentity, token: string, caCertHash: string): KubeadmDocument[] {
    const join: JoinConfiguration = {
        apiVersion: KUBEADM_API_VERSION,
        kind: "JoinConfiguration",
        nodeRegistration: nodeRegistration(node),
        discovery: {
            bootstrapToken: {
                token,
                apiServerEndpoint: cluster.controlPlaneEndpoint,
                caCertHashes: [caCertHash],
            },
        },
        controlPlane: { localAPIEndpoint: { advertiseAddress: node.nodeIp, bindPort: PORTS.apiServer } },
    };
    return [join];
}

/**
 * What `kubeadm init phase ...` reads to render one member's static pods and to update the cluster's
 * copy of the configuration: the node's own settings and the ClusterConfiguration. No bootstrap token.
 */
export function nodeConfigDocuments(cluster: ClusterSettings, node: ControlPlaneNodeIdentity): KubeadmDocument[] {
    const init: InitConfiguration = {
        apiVersion: KUBEADM_API_VERSION,
        kind: "InitConfiguration",
        nodeRegistration: nodeRegistration(node),
        localAPIEndpoint: { advertiseAddress: node.nodeIp, bindPort: PORTS.apiServer },
    };
    return [init, clusterConfiguration(cluster)];
}

/** The line between a member step's JoinConfiguration and its node configuration on stdin. */
export const NODE_CONFIGURATION_MARK = "# kubeadm-ha: node configuration";

/** A member step's stdin: the JoinConfiguration, then the node configuration (scripts/remote/kubeadm-control-plane.sh). */
export function renderMemberInput(join: KubeadmDocument[], node: KubeadmDocument[]): string {
    // One multi-document YAML stream: the mark is a comment at the head of the node's first document.
    return `${renderDocuments(join)}---\n${NODE_CONFIGURATION_MARK}\n${renderDocuments(node)}`;
}

/** Multi-document YAML, as kubeadm reads it. */
export function renderDocuments(documents: KubeadmDocument[]): string {
    return documents.map((d) => stringify(d, { lineWidth: 0 })).join("---\n");
}
