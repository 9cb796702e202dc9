/**
 * The certificates the program issues, checked with openssl on real PEMs (the mocked TLS provider
 * issues them from the program's own inputs), and the kubeconfig checked with kubectl.
 */
import { execFileSync } from "node:child_process";
import { caCertHash } from "../core/discovery";
import { ADMIN_CERT_SPEC, CA_SPECS, withRenewalWindow } from "../core/pki";
import { ProgramRun, runProgram } from "./harness";
import { openssl, requireTool, tempDir, writeTemp } from "./tools";

let run: ProgramRun;
let dir: string;

beforeAll(async () => {
    run = await runProgram({});
    dir = tempDir("pki");
});

const certOf = (name: string) =>
    (run.ofType("tls:index/selfSignedCert:SelfSignedCert").find((r) => r.name === name) ??
        run.ofType("tls:index/locallySignedCert:LocallySignedCert").find((r) => r.name === name))!.state.certPem as string;

/** openssl's view of one certificate extension, e.g. "subjectAltName". */
function extension(pem: string, ext: string): string {
    return openssl(["x509", "-noout", "-ext", ext], pem).split("\n").slice(1).join(" ").replace(/\s+/g, " ").trim();
}

function verify(caPem: string, pem: string): string {
    const ca = writeTemp(dir, "ca.pem", caPem);
    const leaf = writeTemp(dir, "leaf.pem", pem);
    return openssl(["verify", "-CAfile", ca, leaf]).trim();
}

/** Files of a place-pki step's stdin, by path. */
function bundle(commandName: string): Record<string, string> {
    const stdin = run.named(commandName).inputs.stdin as string;
    return Object.fromEntries(
        stdin
            .trim()
            .split("\n")
            .map((line) => {
                const [, path, data] = line.split(" ");
                return [path, Buffer.from(data, "base64").toString("utf8")];
            }),
    );
}

describe("certificate authorities", () => {
    it.each([
        ["kubeadm-ha-ca", "kubernetes"],
        ["kubeadm-ha-front-proxy-ca", "front-proxy-ca"],
        ["kubeadm-ha-etcd-ca", "etcd-ca"],
    ])("%s is a 10-year CA named %s, with CA usages only", (name, commonName) => {
        const pem = certOf(name);
        expect(openssl(["x509", "-noout", "-subject"], pem).trim()).toBe(`subject=CN = ${commonName}`);
        expect(extension(pem, "basicConstraints")).toBe("CA:TRUE");
        expect(extension(pem, "keyUsage")).toBe("Digital Signature, Key Encipherment, Certificate Sign, CRL Sign");
        expect(extension(pem, "extendedKeyUsage")).toBe("");
        const inputs = run.ofType("tls:index/selfSignedCert:SelfSignedCert").find((r) => r.name === name)!.inputs;
        expect([inputs.validityPeriodHours, inputs.earlyRenewalHours]).toEqual([87600, undefined]);
    });

    it("uses ECDSA P-256 for every key but the SSH key, never the provider's P224 default", () => {
        for (const key of run.ofType("tls:index/privateKey:PrivateKey")) {
            const expected = key.name === "kubeadm-ha-ssh" ? { algorithm: "ED25519" } : { algorithm: "ECDSA", ecdsaCurve: "P256" };
            expect([key.name, key.inputs]).toEqual([key.name, expected]);
        }
        expect(openssl(["x509", "-noout", "-text"], certOf("kubeadm-ha-ca"))).toMatch(/ASN1 OID: prime256v1/);
    });
});

describe.each([0, 1, 2])("the API server certificate of node %i", (node) => {
    const ips = ["10.0.0.10", "10.0.16.11", "10.0.32.12"];
    const nodeName = () => `ip-${ips[node].replace(/\./g, "-")}.ec2.internal`;

    it("chains to the cluster CA", () => {
        expect(verify(certOf("kubeadm-ha-ca"), certOf(`kubeadm-ha-cp-${node}-apiserver`))).toMatch(/: OK$/);
        expect(() => verify(certOf("kubeadm-ha-etcd-ca"), certOf(`kubeadm-ha-cp-${node}-apiserver`))).toThrow();
    });

    it("covers every SAN kubeadm requires, plus the NLB name", () => {
        const sans = extension(certOf(`kubeadm-ha-cp-${node}-apiserver`), "subjectAltName").split(", ");
        expect(sans).toEqual(
            expect.arrayContaining([
                `DNS:${nodeName()}`,
                "DNS:kubernetes",
                "DNS:kubernetes.default",
                "DNS:kubernetes.default.svc",
                "DNS:kubernetes.default.svc.cluster.local",
                "DNS:kubeadm-ha-0123456789abcdef.elb.us-east-1.amazonaws.com",
                "IP Address:10.96.0.1",
                `IP Address:${ips[node]}`,
            ]),
        );
    });

    it("is a one-year server certificate re-issued within certificateRenewalDays (60) of expiry, kubeadm's window under pulumi up", () => {
        const pem = certOf(`kubeadm-ha-cp-${node}-apiserver`);
        expect(extension(pem, "basicConstraints")).toBe("CA:FALSE");
        expect(extension(pem, "extendedKeyUsage")).toBe("TLS Web Server Authentication");
        const inputs = run.ofType("tls:index/locallySignedCert:LocallySignedCert").find((r) => r.name === `kubeadm-ha-cp-${node}-apiserver`)!.inputs;
        expect([inputs.validityPeriodHours, inputs.earlyRenewalHours]).toEqual([8760, 60 * 24]);
    });

    it("reaches the node with its key, the shared CAs and the service-account pair", () => {
        const files = bundle(`kubeadm-ha-cp-${node}-pki`);
        expect(files["ca.crt"]).toBe(certOf("kubeadm-ha-ca"));
        expect(files["etcd/ca.crt"]).toBe(certOf("kubeadm-ha-etcd-ca"));
        expect(files["front-proxy-ca.crt"]).toBe(certOf("kubeadm-ha-front-proxy-ca"));
        const certKey = openssl(["x509", "-noout", "-pubkey"], files["apiserver.crt"]);
        expect(openssl(["pkey", "-pubout"], files["apiserver.key"])).toBe(certKey);
        expect(openssl(["pkey", "-pubout"], files["ca.key"])).toBe(openssl(["x509", "-noout", "-pubkey"], files["ca.crt"]));
        expect(openssl(["pkey", "-pubout"], files["sa.key"])).toBe(openssl(["pkey", "-pubin"], files["sa.pub"]));
    });
});

describe("the join discovery pin", () => {
    it("matches openssl's SHA-256 of the CA's public key", () => {
        const ca = certOf("kubeadm-ha-ca");
        const der = execFileSync("openssl", ["pkey", "-pubin", "-outform", "der"], { input: openssl(["x509", "-pubkey", "-noout"], ca) });
        const digest = execFileSync("sha256sum", { input: der, encoding: "utf8" }).split(" ")[0];
        expect(caCertHash(ca)).toBe(`sha256:${digest}`);
        expect(run.named("kubeadm-ha-cp-1-member").inputs.stdin).toContain(`sha256:${digest}`);
    });
});

describe("the stack kubeconfig", () => {
    it("is read by kubectl, points at the NLB, and carries an admin client certificate from the cluster CA", () => {
        requireTool("kubectl", "kubernetes-client");
        const file = writeTemp(dir, "kubeconfig", run.outputs.kubeconfig);
        const view = (jsonpath: string) =>
            execFileSync("kubectl", ["config", "view", "--kubeconfig", file, "--raw", "-o", `jsonpath=${jsonpath}`], { encoding: "utf8" });
        expect(view("{.clusters[0].cluster.server}")).toBe("https://kubeadm-ha-0123456789abcdef.elb.us-east-1.amazonaws.com:6443");
        expect(view("{.current-context}")).toBe("kubeadm-ha-admin@kubeadm-ha");
        const ca = Buffer.from(view("{.clusters[0].cluster.certificate-authority-data}"), "base64").toString();
        const client = Buffer.from(view("{.users[0].user.client-certificate-data}"), "base64").toString();
        const key = Buffer.from(view("{.users[0].user.client-key-data}"), "base64").toString();
        expect(ca).toBe(certOf("kubeadm-ha-ca"));
        expect(verify(ca, client)).toMatch(/: OK$/);
        expect(openssl(["x509", "-noout", "-subject"], client).trim()).toBe("subject=O = kubeadm:cluster-admins, CN = kubeadm-ha-admin");
        expect(extension(client, "extendedKeyUsage")).toBe("TLS Web Client Authentication");
        expect(openssl(["pkey", "-pubout"], key)).toBe(openssl(["x509", "-noout", "-pubkey"], client));
    });
});

describe("the renewal window of the certificates the program issues", () => {
    it("is certificateRenewalDays for every leaf, external etcd's included, so pulumi up re-issues them where it renews kubeadm's", async () => {
        const external = await runProgram({ etcdTopology: "external", certificateRenewalDays: "90" });
        const leaves = external.ofType("tls:index/locallySignedCert:LocallySignedCert");
        const names = leaves.map((l) => l.name);
        expect(names).toEqual(
            expect.arrayContaining([
                "kubeadm-ha-apiserver-etcd-client",
                "kubeadm-ha-etcd-healthcheck-client",
                ...[0, 1, 2].flatMap((i) => [`kubeadm-ha-etcd-${i}-server`, `kubeadm-ha-etcd-${i}-peer`]),
                "kubeadm-ha-admin",
            ]),
        );
        for (const leaf of leaves) expect([leaf.name, leaf.inputs.earlyRenewalHours]).toEqual([leaf.name, 90 * 24]);
        // The CAs are never re-issued early.
        for (const ca of external.ofType("tls:index/selfSignedCert:SelfSignedCert"))
            expect([ca.name, ca.inputs.earlyRenewalHours]).toEqual([ca.name, undefined]);
    });

    it("refuses a window that does not fit the certificate's validity", () => {
        expect(withRenewalWindow(ADMIN_CERT_SPEC, 31).earlyRenewalHours).toBe(744);
        expect(withRenewalWindow(CA_SPECS.etcd, 60)).toBe(CA_SPECS.etcd);
        expect(() => withRenewalWindow(ADMIN_CERT_SPEC, 365)).toThrow(/does not fit a certificate valid for 365 days/);
    });
});
