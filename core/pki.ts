/**
 * Certificate specifications: subject, SANs, usages and validity of everything the program issues.
 * Pure data, handed unchanged to @pulumi/tls by the ClusterPki component and to the test CA that
 * re-issues the same certificates with real tools.
 */

/** Key usage names as @pulumi/tls (the Terraform TLS provider) spells them. */
export type KeyUsage = "cert_signing" | "crl_signing" | "digital_signature" | "key_encipherment" | "server_auth" | "client_auth";

/**
 * Every key is ECDSA P-256: Kubernetes accepts it everywhere, it is fast to generate, and naming the
 * curve avoids @pulumi/tls's P224 default, which Kubernetes rejects. kubeadm is told the same
 * (`encryptionAlgorithm: ECDSA-P256`) so the certificates it issues itself match.
 */
export const KEY_ALGORITHM = { algorithm: "ECDSA", ecdsaCurve: "P256" } as const;
export const KUBEADM_ENCRYPTION_ALGORITHM = "ECDSA-P256";

export const CA_VALIDITY_HOURS = 10 * 365 * 24;
export const LEAF_VALIDITY_HOURS = 365 * 24;
/**
 * A `pulumi up` within this many hours of a leaf's expiry issues a new one: 60 days, the default of
 * certificateRenewalDays. ClusterPki gives every leaf the stack's own window (`withRenewalWindow`), the
 * one in which `pulumi up` also renews the certificates kubeadm issued on the nodes, so one window
 * holds for every certificate the stack reports.
 */
export const LEAF_EARLY_RENEWAL_HOURS = 60 * 24;

export interface CertSpec {
    commonName: string;
    /** Subject organisation (Kubernetes reads it as the user's group). */
    organization?: string;
    isCa: boolean;
    dnsNames: string[];
    ipAddresses: string[];
    allowedUses: KeyUsage[];
    validityHours: number;
    /** Leaf certificates only: renew this many hours before expiry. */
    earlyRenewalHours?: number;
}

const CA_USES: KeyUsage[] = ["cert_signing", "crl_signing", "digital_signature", "key_encipherment"];

function caSpec(commonName: string): CertSpec {
    return { commonName, isCa: true, dnsNames: [], ipAddresses: [], allowedUses: CA_USES, validityHours: CA_VALIDITY_HOURS };
}

function leafSpec(spec: Omit<CertSpec, "isCa" | "validityHours" | "earlyRenewalHours">): CertSpec {
    return { ...spec, isCa: false, validityHours: LEAF_VALIDITY_HOURS, earlyRenewalHours: LEAF_EARLY_RENEWAL_HOURS };
}

/** The three CAs kubeadm expects, with kubeadm's own common names. */
export const CA_SPECS = {
    cluster: caSpec("kubernetes"),
    frontProxy: caSpec("front-proxy-ca"),
    etcd: caSpec("etcd-ca"),
} as const;
export type CaName = keyof typeof CA_SPECS;

export interface ApiServerIdentity {
    nodeName: string;
    nodeIp: string;
    /** Host part of controlPlaneEndpoint: the load balancer's DNS name. */
    endpointHost: string;
    kubernetesServiceIp: string;
    dnsDomain: string;
}

/**
 * The kube-apiserver serving certificate of one node. kubeadm reuses a pre-placed certificate only if
 * its SANs cover everything kubeadm would have put there (node name and address, the `kubernetes`
 * service names and IP, the endpoint host); localhost lets a node's own scripts check its local API.
 */
export function apiServerCertSpec(id: ApiServerIdentity): CertSpec {
    return leafSpec({
        commonName: "kube-apiserver",
        dnsNames: unique([
            id.nodeName,
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            `kubernetes.default.svc.${id.dnsDomain}`,
            id.endpointHost,
            "localhost",
        ]),
        ipAddresses: unique([id.kubernetesServiceIp, id.nodeIp, "127.0.0.1"]),
        allowedUses: ["digital_signature", "key_encipherment", "server_auth"],
    });
}

/**
 * The stack's own administrator. kubeadm (1.29+) binds the `kubeadm:cluster-admins` group to
 * cluster-admin; unlike `system:masters` the binding can be revoked.
 */
export const ADMIN_CERT_SPEC: CertSpec = leafSpec({
    commonName: "kubeadm-ha-admin",
    organization: "kubeadm:cluster-admins",
    dnsNames: [],
    ipAddresses: [],
    allowedUses: ["digital_signature", "key_encipherment", "client_auth"],
});

export interface EtcdMemberIdentity {
    /** The instance's private DNS name, e.g. ip-10-0-0-20.ec2.internal. */
    hostname: string;
    ip: string;
}

/**
 * An external etcd member's server or peer certificate. Peers dial each other as clients and serve
 * each other, so both kinds need serverAuth and clientAuth (as kubeadm's own etcd certs do).
 */
export function etcdMemberCertSpec(kind: "server" | "peer", member: EtcdMemberIdentity): CertSpec {
    return leafSpec({
        commonName: `${member.hostname}-${kind}`,
        // The full private DNS name and the short host name the machine calls itself.
        dnsNames: unique([member.hostname, member.hostname.split(".")[0], "localhost"]),
        ipAddresses: unique([member.ip, "127.0.0.1"]),
        allowedUses: ["digital_signature", "key_encipherment", "server_auth", "client_auth"],
    });
}

/** The API servers' client identity at external etcd (kubeadm's name for it). */
export const APISERVER_ETCD_CLIENT_SPEC: CertSpec = leafSpec({
    commonName: "kube-apiserver-etcd-client",
    dnsNames: [],
    ipAddresses: [],
    allowedUses: ["digital_signature", "key_encipherment", "client_auth"],
});

/** The etcd members' own client identity, for the health gate and operators' etcdctl. */
export const ETCD_HEALTHCHECK_CLIENT_SPEC: CertSpec = leafSpec({
    commonName: "kube-etcd-healthcheck-client",
    dnsNames: [],
    ipAddresses: [],
    allowedUses: ["digital_signature", "key_encipherment", "client_auth"],
});

/**
 * `spec` re-issued by any `pulumi up` within `days` of its expiry (certificateRenewalDays). @pulumi/tls
 * decides at each update: within `earlyRenewalHours` of the end of its validity it replaces the
 * certificate, and the steps that place it run again. A CA keeps no early renewal.
 */
export function withRenewalWindow(spec: CertSpec, days: number): CertSpec {
    if (spec.isCa) return spec;
    if (!Number.isInteger(days) || days < 1 || days * 24 >= spec.validityHours) {
        throw new Error(`a renewal window of ${days} days does not fit a certificate valid for ${spec.validityHours / 24} days`);
    }
    return { ...spec, earlyRenewalHours: days * 24 };
}

function unique(values: string[]): string[] {
    return [...new Set(values)];
}

/** What @pulumi/tls's CertRequest is given for a spec (subject and SANs travel in the request). */
export function certRequestInputs(spec: CertSpec) {
    return {
        subject: spec.organization ? { commonName: spec.commonName, organization: spec.organization } : { commonName: spec.commonName },
        dnsNames: spec.dnsNames,
        ipAddresses: spec.ipAddresses,
    };
}

/** What @pulumi/tls's LocallySignedCert (or SelfSignedCert, for a CA) is given for a spec. */
export function signingInputs(spec: CertSpec) {
    return {
        isCaCertificate: spec.isCa,
        validityPeriodHours: spec.validityHours,
        earlyRenewalHours: spec.earlyRenewalHours ?? 0,
        allowedUses: spec.allowedUses,
    };
}

export interface PkiFile {
    /** Relative to kubeadm's certificate directory, e.g. "etcd/ca.crt". */
    path: string;
    /** Octal permission bits: "0600" for keys, "0644" for certificates. */
    mode: "0600" | "0644";
    content: string;
}

/** The stdin of the place-pki step: one "<mode> <path> <base64>" line per file, in the given order. */
export function renderPkiBundle(files: readonly PkiFile[]): string {
    return files.map((f) => `${f.mode} ${f.path} ${Buffer.from(f.content, "utf8").toString("base64")}\n`).join("");
}
