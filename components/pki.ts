import * as pulumi from "@pulumi/pulumi";
import * as tls from "@pulumi/tls";
import { ADMIN_CERT_SPEC, CA_SPECS, CaName, CertSpec, certRequestInputs, KEY_ALGORITHM, signingInputs, withRenewalWindow } from "../core/pki";

/** A key and its certificate, PEM-encoded; the key is a secret Output. */
export interface KeyPairPem {
    keyPem: pulumi.Output<string>;
    certPem: pulumi.Output<string>;
}

function privateKey(name: string, parent: pulumi.Resource): tls.PrivateKey {
    return new tls.PrivateKey(name, { algorithm: KEY_ALGORITHM.algorithm, ecdsaCurve: KEY_ALGORITHM.ecdsaCurve }, { parent });
}

export interface ClusterPkiArgs {
    /**
     * Every leaf is re-issued by a `pulumi up` within this many days of its expiry
     * (certificateRenewalDays): the window in which `pulumi up` renews kubeadm's certificates too.
     */
    renewWithinDays: number;
}

/**
 * The cluster's certificate authorities and shared keys, issued with @pulumi/tls and kept in the
 * stack's (encrypted) state: the Kubernetes CA, the front-proxy CA, the etcd CA, the service-account
 * signing key pair and the stack administrator's client certificate. Every node gets the CAs; per-node
 * certificates are issued with `issue`, the rest by kubeadm on the node from the same CAs.
 */
export class ClusterPki extends pulumi.ComponentResource {
    readonly cas: Record<CaName, KeyPairPem>;
    /** kubeadm's sa.key / sa.pub: signs and verifies service-account tokens on every API server. */
    readonly serviceAccount: { keyPem: pulumi.Output<string>; publicKeyPem: pulumi.Output<string> };
    readonly admin: KeyPairPem;
    private readonly renewWithinDays: number;

    constructor(name: string, args: ClusterPkiArgs, opts?: pulumi.ComponentResourceOptions) {
        super("kubeadm-ha:pki:ClusterPki", name, {}, opts);
        this.renewWithinDays = args.renewWithinDays;

        const ca = (caName: CaName, resourceName: string): KeyPairPem => {
            const spec = CA_SPECS[caName];
            const key = privateKey(resourceName, this);
            const { subject } = certRequestInputs(spec);
            const { isCaCertificate, validityPeriodHours, allowedUses } = signingInputs(spec);
            const cert = new tls.SelfSignedCert(
                resourceName,
                {
                    privateKeyPem: key.privateKeyPem,
                    subject,
                    isCaCertificate,
                    validityPeriodHours,
                    allowedUses,
                },
                { parent: key },
            );
            return { keyPem: key.privateKeyPem, certPem: cert.certPem };
        };
        this.cas = {
            cluster: ca("cluster", `${name}-ca`),
            frontProxy: ca("frontProxy", `${name}-front-proxy-ca`),
            etcd: ca("etcd", `${name}-etcd-ca`),
        };

        const saKey = privateKey(`${name}-service-account`, this);
        this.serviceAccount = { keyPem: saKey.privateKeyPem, publicKeyPem: saKey.publicKeyPem };
        this.admin = this.issue(`${name}-admin`, "cluster", pulumi.output(ADMIN_CERT_SPEC));

        this.registerOutputs({ clusterCaCertPem: this.cas.cluster.certPem });
    }

    /**
     * Issues a leaf certificate from one of the CAs, re-issued within the stack's renewal window. `spec`
     * may hold Outputs (a node's address, the load balancer's name); the certificate is parented to
     * this component so it lives with its CA.
     */
    issue(name: string, caName: CaName, spec: pulumi.Output<CertSpec>, parent: pulumi.Resource = this): KeyPairPem {
        const ca = this.cas[caName];
        const key = privateKey(name, parent);
        const requested = spec.apply(certRequestInputs);
        const signing = spec.apply((s) => signingInputs(withRenewalWindow(s, this.renewWithinDays)));
        const request = new tls.CertRequest(
            name,
            {
                privateKeyPem: key.privateKeyPem,
                subject: requested.subject,
                dnsNames: requested.dnsNames,
                ipAddresses: requested.ipAddresses,
            },
            { parent: key },
        );
        const cert = new tls.LocallySignedCert(
            name,
            {
                certRequestPem: request.certRequestPem,
                caPrivateKeyPem: ca.keyPem,
                caCertPem: ca.certPem,
                isCaCertificate: signing.isCaCertificate,
                validityPeriodHours: signing.validityPeriodHours,
                earlyRenewalHours: signing.earlyRenewalHours,
                allowedUses: signing.allowedUses,
            },
            { parent: key },
        );
        return { keyPem: key.privateKeyPem, certPem: cert.certPem };
    }
}
