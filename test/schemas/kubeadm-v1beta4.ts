/**
 * A strict schema of kubeadm's v1beta4 configuration, written from the official API:
 *   https://kubernetes.io/docs/reference/config-api/kubeadm-config.v1beta4/
 *   kubernetes/kubernetes cmd/kubeadm/app/apis/kubeadm/v1beta4/types.go (json tags; fields without
 *   `omitempty` are listed as required where kubeadm rejects their absence)
 *   cmd/kubeadm/app/apis/bootstraptoken/v1/types.go (BootstrapToken)
 *   staging/src/k8s.io/kubelet/config/v1beta1/types.go (KubeletConfiguration, only the fields used here)
 * kubeadm decodes strictly: a field not listed here is an error, as it is for kubeadm.
 */

export type Schema =
    | { type: "string" | "integer" | "boolean" | "duration" }
    | { type: "enum"; values: string[] }
    | { type: "array"; items: Schema }
    | { type: "map"; values: Schema }
    | { type: "object"; fields: Record<string, Schema>; required?: string[] };

const string: Schema = { type: "string" };
const integer: Schema = { type: "integer" };
const boolean: Schema = { type: "boolean" };
/** metav1.Duration: a Go duration string such as "1h0m0s". */
const duration: Schema = { type: "duration" };
const strings: Schema = { type: "array", items: string };
const object = (fields: Record<string, Schema>, required: string[] = []): Schema => ({ type: "object", fields, required });

const typeMeta = { apiVersion: string, kind: string };

/** v1beta4 Arg: extra arguments are name/value pairs. */
const args: Schema = { type: "array", items: object({ name: string, value: string }, ["name", "value"]) };

const envVars: Schema = {
    type: "array",
    items: object({ name: string, value: string, valueFrom: { type: "map", values: { type: "map", values: string } } }, ["name"]),
};

const hostPathMount: Schema = object({ name: string, hostPath: string, mountPath: string, readOnly: boolean, pathType: string }, [
    "name",
    "hostPath",
    "mountPath",
]);

const controlPlaneComponent = { extraArgs: args, extraVolumes: { type: "array", items: hostPathMount } as Schema, extraEnvs: envVars };

const apiEndpoint = object({ advertiseAddress: string, bindPort: integer });

const taint = object({ key: string, value: string, effect: { type: "enum", values: ["NoSchedule", "PreferNoSchedule", "NoExecute"] }, timeAdded: string }, [
    "key",
    "effect",
]);

const nodeRegistration = object({
    name: string,
    criSocket: string,
    taints: { type: "array", items: taint },
    kubeletExtraArgs: args,
    ignorePreflightErrors: strings,
    imagePullPolicy: { type: "enum", values: ["Always", "IfNotPresent", "Never"] },
    imagePullSerial: boolean,
});

const timeouts = object({
    controlPlaneComponentHealthCheck: duration,
    kubeletHealthCheck: duration,
    kubernetesAPICall: duration,
    etcdAPICall: duration,
    tlsBootstrap: duration,
    discovery: duration,
    upgradeManifests: duration,
});

const patches = object({ directory: string });

const bootstrapToken = object({ token: { type: "string" }, description: string, ttl: duration, expires: string, usages: strings, groups: strings }, ["token"]);

export const INIT_CONFIGURATION = object(
    {
        ...typeMeta,
        bootstrapTokens: { type: "array", items: bootstrapToken },
        dryRun: boolean,
        nodeRegistration,
        localAPIEndpoint: apiEndpoint,
        certificateKey: string,
        skipPhases: strings,
        patches,
        timeouts,
    },
    ["apiVersion", "kind"],
);

const imageMeta = { imageRepository: string, imageTag: string };

export const CLUSTER_CONFIGURATION = object(
    {
        ...typeMeta,
        etcd: object({
            local: object({ ...imageMeta, dataDir: string, extraArgs: args, extraEnvs: envVars, serverCertSANs: strings, peerCertSANs: strings }, ["dataDir"]),
            external: object({ endpoints: strings, caFile: string, certFile: string, keyFile: string }, ["endpoints", "caFile", "certFile", "keyFile"]),
        }),
        networking: object({ serviceSubnet: string, podSubnet: string, dnsDomain: string }),
        kubernetesVersion: string,
        controlPlaneEndpoint: string,
        apiServer: object({ ...controlPlaneComponent, certSANs: strings }),
        controllerManager: object(controlPlaneComponent),
        scheduler: object(controlPlaneComponent),
        dns: object({ ...imageMeta, disabled: boolean }),
        proxy: object({ disabled: boolean }),
        certificatesDir: string,
        imageRepository: string,
        featureGates: { type: "map", values: boolean },
        clusterName: string,
        encryptionAlgorithm: { type: "enum", values: ["RSA-2048", "RSA-3072", "RSA-4096", "ECDSA-P256", "ECDSA-P384"] },
        certificateValidityPeriod: duration,
        caCertificateValidityPeriod: duration,
    },
    ["apiVersion", "kind"],
);

export const JOIN_CONFIGURATION = object(
    {
        ...typeMeta,
        dryRun: boolean,
        nodeRegistration,
        caCertPath: string,
        discovery: object({
            bootstrapToken: object({ token: string, apiServerEndpoint: string, caCertHashes: strings, unsafeSkipCAVerification: boolean }, ["token"]),
            file: object({ kubeConfigPath: string }, ["kubeConfigPath"]),
            tlsBootstrapToken: string,
        }),
        controlPlane: object({ localAPIEndpoint: apiEndpoint, certificateKey: string }),
        skipPhases: strings,
        patches,
        timeouts,
    },
    ["apiVersion", "kind", "discovery"],
);

/** Only the KubeletConfiguration fields this project sets; the kubelet's type has many more. */
export const KUBELET_CONFIGURATION = object({ ...typeMeta, cgroupDriver: { type: "enum", values: ["systemd", "cgroupfs"] } }, ["apiVersion", "kind"]);

export const SCHEMAS: Record<string, Schema> = {
    "kubeadm.k8s.io/v1beta4/InitConfiguration": INIT_CONFIGURATION,
    "kubeadm.k8s.io/v1beta4/ClusterConfiguration": CLUSTER_CONFIGURATION,
    "kubeadm.k8s.io/v1beta4/JoinConfiguration": JOIN_CONFIGURATION,
    "kubelet.config.k8s.io/v1beta1/KubeletConfiguration": KUBELET_CONFIGURATION,
};

/** Every violation of `schema` in `value`, as "path: problem". */
export function validate(value: unknown, schema: Schema, path = "$"): string[] {
    switch (schema.type) {
        case "string":
            return typeof value === "string" ? [] : [`${path}: expected a string`];
        case "integer":
            return Number.isInteger(value) ? [] : [`${path}: expected an integer`];
        case "boolean":
            return typeof value === "boolean" ? [] : [`${path}: expected a boolean`];
        case "duration":
            return typeof value === "string" && /^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/.test(value) ? [] : [`${path}: expected a Go duration such as 1h0m0s`];
        case "enum":
            return schema.values.includes(value as string) ? [] : [`${path}: ${JSON.stringify(value)} is not one of ${schema.values.join(", ")}`];
        case "array":
            return Array.isArray(value) ? value.flatMap((v, i) => validate(v, schema.items, `${path}[${i}]`)) : [`${path}: expected a list`];
        case "map":
            return value && typeof value === "object" && !Array.isArray(value)
                ? Object.entries(value).flatMap(([k, v]) => validate(v, schema.values, `${path}.${k}`))
                : [`${path}: expected a map`];
        case "object": {
            if (!value || typeof value !== "object" || Array.isArray(value)) return [`${path}: expected an object`];
            const record = value as Record<string, unknown>;
            return [
                ...(schema.required ?? []).filter((k) => !(k in record)).map((k) => `${path}.${k}: required field missing`),
                ...Object.entries(record).flatMap(([k, v]) =>
                    k in schema.fields ? validate(v, schema.fields[k], `${path}.${k}`) : [`${path}.${k}: unknown field`],
                ),
            ];
        }
    }
}

/** Validates one parsed document against the schema of its apiVersion and kind. */
export function validateDocument(document: Record<string, unknown>): string[] {
    const schema = SCHEMAS[`${document.apiVersion}/${document.kind}`];
    return schema ? validate(document, schema) : [`$: unknown apiVersion/kind ${document.apiVersion}/${document.kind}`];
}
