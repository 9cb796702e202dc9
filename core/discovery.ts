/**
 * kubeadm's CA public-key pin: "sha256:" + hex SHA-256 of the CA certificate's DER-encoded
 * SubjectPublicKeyInfo (kubeadm's pubkeypin package). A joining node trusts the cluster only if the
 * CA it discovers hashes to this value.
 */
import { createHash, X509Certificate } from "node:crypto";

export function caCertHash(caCertPem: string): string {
    const spki = new X509Certificate(caCertPem).publicKey.export({ type: "spki", format: "der" });
    return `sha256:${createHash("sha256").update(spki).digest("hex")}`;
}
