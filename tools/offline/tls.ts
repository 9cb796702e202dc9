/**
 * A stand-in for the @pulumi/tls provider in tests: it issues real keys and certificates from exactly
 * the inputs the program hands the provider (subject, SANs, usages, CA flag, validity), so the tests
 * check real PEMs with openssl instead of trusting strings.
 */
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import { createPrivateKey, generateKeyPairSync, KeyObject, webcrypto } from "node:crypto";
import { CertSpec, certRequestInputs, KEY_ALGORITHM, signingInputs } from "../../core/pki";

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

const ECDSA = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;

const USAGE_FLAGS: Record<string, number> = {
    digital_signature: x509.KeyUsageFlags.digitalSignature,
    key_encipherment: x509.KeyUsageFlags.keyEncipherment,
    cert_signing: x509.KeyUsageFlags.keyCertSign,
    crl_signing: x509.KeyUsageFlags.cRLSign,
};
const EXTENDED_USAGES: Record<string, string> = {
    server_auth: x509.ExtendedKeyUsage.serverAuth,
    client_auth: x509.ExtendedKeyUsage.clientAuth,
};

export interface Subject {
    commonName?: string;
    organization?: string;
}

/** tls.PrivateKey: ECDSA P-256 as SEC1 PEM (like the provider), or ED25519 for SSH. */
export function privateKeyOutputs(inputs: { algorithm: string; ecdsaCurve?: string }): Record<string, string> {
    if (inputs.algorithm === "ECDSA") {
        if (inputs.ecdsaCurve !== "P256") throw new Error(`mock tls supports only P256, got ${inputs.ecdsaCurve}`);
        const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
        return {
            privateKeyPem: privateKey.export({ type: "sec1", format: "pem" }).toString(),
            privateKeyPemPkcs8: privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
            publicKeyPem: publicKey.export({ type: "spki", format: "pem" }).toString(),
        };
    }
    if (inputs.algorithm === "ED25519") {
        const { privateKey, publicKey } = generateKeyPairSync("ed25519");
        const raw = publicKey.export({ type: "spki", format: "der" }).subarray(-32);
        const sshString = (b: Buffer) => {
            const len = Buffer.alloc(4);
            len.writeUInt32BE(b.length);
            return Buffer.concat([len, b]);
        };
        const wire = Buffer.concat([sshString(Buffer.from("ssh-ed25519")), sshString(raw)]);
        return {
            privateKeyPem: privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
            // Node cannot write OpenSSH's private-key format; only the mocked SSH connection reads it.
            privateKeyOpenssh: privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
            publicKeyOpenssh: `ssh-ed25519 ${wire.toString("base64")}\n`,
            publicKeyPem: publicKey.export({ type: "spki", format: "pem" }).toString(),
        };
    }
    throw new Error(`mock tls: unsupported algorithm ${inputs.algorithm}`);
}

async function importKeys(privateKeyPem: string): Promise<CryptoKeyPair> {
    const key: KeyObject = createPrivateKey(privateKeyPem);
    const pkcs8 = key.export({ type: "pkcs8", format: "der" });
    const privateKey = await webcrypto.subtle.importKey("pkcs8", pkcs8, ECDSA, true, ["sign"]);
    const jwk = await webcrypto.subtle.exportKey("jwk", privateKey);
    delete jwk.d;
    jwk.key_ops = ["verify"];
    const publicKey = await webcrypto.subtle.importKey("jwk", jwk, ECDSA, true, ["verify"]);
    return { privateKey, publicKey } as CryptoKeyPair;
}

function distinguishedName(subject: Subject | undefined): string {
    const parts: string[] = [];
    if (subject?.organization) parts.push(`O=${subject.organization}`);
    if (subject?.commonName) parts.push(`CN=${subject.commonName}`);
    return parts.join(", ");
}

function sanExtension(dnsNames: string[] = [], ipAddresses: string[] = []): x509.Extension[] {
    const names = [...dnsNames.map((value) => ({ type: "dns" as const, value })), ...ipAddresses.map((value) => ({ type: "ip" as const, value }))];
    return names.length > 0 ? [new x509.SubjectAlternativeNameExtension(names)] : [];
}

async function usageExtensions(allowedUses: string[], isCa: boolean, publicKey: CryptoKey): Promise<x509.Extension[]> {
    const flags = allowedUses.reduce((acc, use) => acc | (USAGE_FLAGS[use] ?? 0), 0);
    const extended = allowedUses.filter((use) => EXTENDED_USAGES[use]).map((use) => EXTENDED_USAGES[use]);
    const unknown = allowedUses.filter((use) => USAGE_FLAGS[use] === undefined && EXTENDED_USAGES[use] === undefined);
    if (unknown.length > 0) throw new Error(`mock tls: usage(s) the provider would reject: ${unknown.join(", ")}`);
    return [
        new x509.BasicConstraintsExtension(isCa, undefined, true),
        ...(flags ? [new x509.KeyUsagesExtension(flags, true)] : []),
        ...(extended.length > 0 ? [new x509.ExtendedKeyUsageExtension(extended)] : []),
        ...(isCa ? [await x509.SubjectKeyIdentifierExtension.create(publicKey)] : []),
    ];
}

/** How many days before now the stand-in issues certificates: 0, unless a test ages what it issues. */
let issuedDaysAgo = 0;

/**
 * Certificates issued from now on start `days` in the past, as if the stack had issued them that long
 * ago: a test can deploy with certificates that are months old, then let time catch up (0).
 */
export function issueCertificatesAsOf(days: number): void {
    issuedDaysAgo = days;
}

function validity(hours: number): { notBefore: Date; notAfter: Date } {
    const notBefore = new Date(Date.now() - issuedDaysAgo * 86_400_000);
    return { notBefore, notAfter: new Date(notBefore.getTime() + hours * 3600 * 1000) };
}

/**
 * The provider's `readyForRenewal`: a certificate whose end of validity, less `earlyRenewalHours`, has
 * come. @pulumi/tls then replaces it at the next update (its plan marks the certificate for
 * replacement), and every input made from it changes.
 */
export function readyForRenewal(certPem: string, earlyRenewalHours = 0, now = Date.now()): boolean {
    const notAfter = new x509.X509Certificate(certPem).notAfter.getTime();
    return notAfter - earlyRenewalHours * 3600 * 1000 <= now;
}

function serial(): string {
    return Buffer.from(webcrypto.getRandomValues(new Uint8Array(16)))
        .toString("hex")
        .replace(/^[89a-f]/, "1");
}

/** tls.SelfSignedCert */
export async function selfSignedCertOutputs(inputs: {
    privateKeyPem: string;
    subject?: Subject;
    isCaCertificate?: boolean;
    validityPeriodHours: number;
    allowedUses: string[];
    dnsNames?: string[];
    ipAddresses?: string[];
}): Promise<Record<string, string>> {
    const keys = await importKeys(inputs.privateKeyPem);
    const name = distinguishedName(inputs.subject);
    const cert = await x509.X509CertificateGenerator.create({
        serialNumber: serial(),
        subject: name,
        issuer: name,
        ...validity(inputs.validityPeriodHours),
        signingAlgorithm: ECDSA,
        publicKey: keys.publicKey,
        signingKey: keys.privateKey,
        extensions: [
            ...(await usageExtensions(inputs.allowedUses, inputs.isCaCertificate ?? false, keys.publicKey)),
            ...sanExtension(inputs.dnsNames, inputs.ipAddresses),
        ],
    });
    return { certPem: cert.toString("pem") + "\n" };
}

/** tls.CertRequest */
export async function certRequestOutputs(inputs: {
    privateKeyPem: string;
    subject?: Subject;
    dnsNames?: string[];
    ipAddresses?: string[];
}): Promise<Record<string, string>> {
    const keys = await importKeys(inputs.privateKeyPem);
    const csr = await x509.Pkcs10CertificateRequestGenerator.create({
        name: distinguishedName(inputs.subject),
        keys,
        signingAlgorithm: ECDSA,
        extensions: sanExtension(inputs.dnsNames, inputs.ipAddresses),
    });
    return { certRequestPem: csr.toString("pem") + "\n" };
}

/** tls.LocallySignedCert: subject and SANs come from the request, usages from the inputs. */
export async function locallySignedCertOutputs(inputs: {
    certRequestPem: string;
    caPrivateKeyPem: string;
    caCertPem: string;
    validityPeriodHours: number;
    allowedUses: string[];
    isCaCertificate?: boolean;
}): Promise<Record<string, string>> {
    const csr = new x509.Pkcs10CertificateRequest(inputs.certRequestPem);
    const ca = new x509.X509Certificate(inputs.caCertPem);
    const caKeys = await importKeys(inputs.caPrivateKeyPem);
    const publicKey = await csr.publicKey.export(ECDSA, ["verify"]);
    const san = csr.getExtension("2.5.29.17"); // subjectAltName
    const cert = await x509.X509CertificateGenerator.create({
        serialNumber: serial(),
        subject: csr.subject,
        issuer: ca.subject,
        ...validity(inputs.validityPeriodHours),
        signingAlgorithm: ECDSA,
        publicKey,
        signingKey: caKeys.privateKey,
        extensions: [
            ...(await usageExtensions(inputs.allowedUses, inputs.isCaCertificate ?? false, publicKey)),
            ...(san ? [san] : []),
            await x509.AuthorityKeyIdentifierExtension.create(ca, false),
        ],
    });
    return { certPem: cert.toString("pem") + "\n" };
}

export interface IssuedPem {
    certPem: string;
    keyPem: string;
}

/**
 * Issues a certificate from one of the program's CertSpecs, through exactly the inputs the ClusterPki
 * component hands @pulumi/tls (core/pki.ts certRequestInputs and signingInputs). Self-signed without
 * `ca`.
 */
export async function issueFromSpec(spec: CertSpec, ca?: IssuedPem): Promise<IssuedPem> {
    const keyPem = privateKeyOutputs(KEY_ALGORITHM).privateKeyPem;
    const request = certRequestInputs(spec);
    const signing = signingInputs(spec);
    if (!ca) {
        return { keyPem, certPem: (await selfSignedCertOutputs({ privateKeyPem: keyPem, ...request, ...signing })).certPem };
    }
    const { certRequestPem } = await certRequestOutputs({ privateKeyPem: keyPem, ...request });
    const { certPem } = await locallySignedCertOutputs({ certRequestPem, caPrivateKeyPem: ca.keyPem, caCertPem: ca.certPem, ...signing });
    return { keyPem, certPem };
}
