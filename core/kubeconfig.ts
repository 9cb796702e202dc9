/**
 * The stack's kubeconfig, in the format `kubectl` reads (clientcmd v1). Built from the admin client
 * certificate the program issues, pointing at the load-balanced endpoint.
 */
import { stringify } from "yaml";

export interface KubeconfigInput {
    clusterName: string;
    /** "https://<nlb-dns>:6443" */
    server: string;
    caCertPem: string;
    clientCertPem: string;
    clientKeyPem: string;
}

const b64 = (pem: string): string => Buffer.from(pem, "utf8").toString("base64");

export function renderKubeconfig(input: KubeconfigInput): string {
    const user = `${input.clusterName}-admin`;
    return stringify(
        {
            apiVersion: "v1",
            kind: "Config",
            clusters: [{ name: input.clusterName, cluster: { server: input.server, "certificate-authority-data": b64(input.caCertPem) } }],
            users: [{ name: user, user: { "client-certificate-data": b64(input.clientCertPem), "client-key-data": b64(input.clientKeyPem) } }],
            contexts: [{ name: user + "@" + input.clusterName, context: { cluster: input.clusterName, user } }],
            "current-context": user + "@" + input.clusterName,
            preferences: {},
        },
        { lineWidth: 0 },
    );
}
