/**
 * Runs the Pulumi program offline, under Pulumi's mocks (no engine, no AWS, no provider plugins), and
 * records every resource it declares. The tests, the offline renderer and the benchmark all run the
 * program through this one engine, so what they check is what `pulumi up` would declare. Provider behaviour is imitated where the program depends on it: AWS computes
 * ids, addresses and DNS names; @pulumi/tls issues real certificates (mock-tls.ts). Outputs are
 * remembered per resource across runs, as a stack's state would, so two runs of the same config can be
 * compared for determinism.
 */
import { createHash } from "node:crypto";
import type * as pulumiType from "@pulumi/pulumi";
import { certRequestOutputs, locallySignedCertOutputs, privateKeyOutputs, readyForRenewal, selfSignedCertOutputs } from "./tls";

export interface RecordedResource {
    type: string;
    name: string;
    /** Inputs with secrets unwrapped; `secretInputs` names the top-level ones that were secret. */
    inputs: Record<string, any>;
    secretInputs: string[];
    /** Inputs as the state holds them in plain text: every secret value, at any depth, is "[secret]". */
    plainInputs?: Record<string, any>;
    /** The id the provider gives the resource (undefined in preview); never encrypted in the state. */
    id?: string;
    /** Outputs the mock computed (empty in preview, where they are unknown). */
    state: Record<string, any>;
    /** Names of the resources this one waits for (input dependencies and dependsOn). */
    dependsOn: string[];
    /** Name of the explicit provider the resource is sent through, if any. */
    provider?: string;
    /** Resource options as the engine receives them. */
    options: {
        parent: string;
        protect: boolean;
        ignoreChanges: string[];
        replaceOnChanges: string[];
        /** Outputs the state encrypts besides those the provider marks secret. */
        additionalSecretOutputs?: string[];
        /** Names the resource had before (its aliases). */
        aliases?: string[];
    };
}

export interface InvokeRecord {
    token: string;
    inputs: Record<string, any>;
}

export interface ProgramRun {
    resources: RecordedResource[];
    invokes: InvokeRecord[];
    /** Stack outputs with secrets unwrapped; `secretOutputs` names the ones that were secret. */
    outputs: Record<string, any>;
    secretOutputs: string[];
    /** Stack outputs as they appear when printed without --show-secrets. */
    plainOutputs: Record<string, any>;
    ofType(type: string): RecordedResource[];
    named(name: string): RecordedResource;
    /** Whether `name` waits, directly or through others, for `other`. */
    waitsFor(name: string, other: string): boolean;
}

/** The name part of a URN (urn:pulumi:stack::project::type$type::name). */
function nameOfUrn(urn: string): string {
    return urn.slice(urn.lastIndexOf("::") + 2);
}

export interface RunOptions {
    preview?: boolean;
    /** Zones the mocked region offers. */
    regionZones?: string[];
    /**
     * Track instances across runs as `pulumi up` would replace them: a changed force-new property, or
     * a name in `replace` (`pulumi up --replace`), makes a new instance with a new id and address.
     */
    replacements?: { replace?: string[] };
    /** Instance types a zone does not offer (zone → types); every type is offered everywhere else. */
    notOffered?: Record<string, string[]>;
    /** The newest Ubuntu image the AMI lookup finds, per architecture (Canonical publishes new ones). */
    images?: Partial<Record<"x86_64" | "arm64", string>>;
    /**
     * A `pulumi refresh` ran before this run: the provider then knows each instance's launch template
     * version, and an instance declared with `$Latest` (or `$Default`) is replaced when its template
     * has a newer one (terraform-provider-aws, aws_instance CustomizeDiff).
     */
    refresh?: boolean;
    /**
     * Outputs of the stack's last update, which a StackReference to the stack itself reads (the
     * program's own previous run); unset is an empty map, as on a stack's first run.
     */
    previousOutputs?: Record<string, unknown>;
    /**
     * Loads modules in a fresh registry, so each run has its own Pulumi runtime (tests pass
     * jest.isolateModules; a one-shot tool can load directly).
     */
    isolate?: (load: () => void) => void;
}

export const REGION_ZONES = ["us-east-1a", "us-east-1b", "us-east-1c", "us-east-1d"];

/** Zones a mocked region offers: <region>a to <region>d. */
export function zonesOf(region: string): string[] {
    return ["a", "b", "c", "d"].map((letter) => `${region}${letter}`);
}

/** EC2 instance types the mocked region knows. */
const INSTANCE_TYPES: Record<string, { supportedArchitectures: string[]; defaultVcpus: number; memorySize: number }> = {
    "t3.small": { supportedArchitectures: ["x86_64"], defaultVcpus: 2, memorySize: 2048 },
    "t3.medium": { supportedArchitectures: ["x86_64"], defaultVcpus: 2, memorySize: 4096 },
    "t3.micro": { supportedArchitectures: ["x86_64"], defaultVcpus: 2, memorySize: 1024 },
    "m7g.large": { supportedArchitectures: ["arm64"], defaultVcpus: 2, memorySize: 8192 },
    "t4g.small": { supportedArchitectures: ["arm64"], defaultVcpus: 2, memorySize: 2048 },
};

/** The @pulumi/tls certificates, which a `pulumi up` within their early renewal period replaces. */
const CERTIFICATE_TYPES = new Set(["tls:index/locallySignedCert:LocallySignedCert", "tls:index/selfSignedCert:SelfSignedCert"]);

/** Computed outputs remembered per resource, like a stack's state between two `pulumi up`s. */
const state = new Map<string, Record<string, any>>();

/** Each instance's generation and last inputs, when runs track replacements, and whether a refresh has read it since. */
const generations = new Map<string, { generation: number; inputs: Record<string, any>; refreshed?: boolean }>();

/** What a launch template version holds: the inputs that make one. */
export interface LaunchTemplateVersion {
    imageId: string;
    userData: string;
}

/** Each launch template's versions by its id, oldest first: an update with new content adds one, as EC2 does. */
const templateVersions = new Map<string, LaunchTemplateVersion[]>();

/** The version each instance (by name) was launched from, in its current generation. */
const launchedFrom = new Map<string, { templateId: string; version: number } & LaunchTemplateVersion>();

/** Forgets all remembered outputs, as for a new stack. */
export function resetState(): void {
    state.clear();
    generations.clear();
    templateVersions.clear();
    launchedFrom.clear();
}

/** The launch template version instance `name` was launched from (its image and user data), once it exists. */
export function launchTemplateVersionOf(name: string): ({ templateId: string; version: number } & LaunchTemplateVersion) | undefined {
    return launchedFrom.get(name);
}

/** Records a launch template's content as its newest version when it differs from the last one. */
function templateVersion(id: string, inputs: Record<string, any>): number {
    const versions = templateVersions.get(id) ?? [];
    const content = { imageId: inputs.imageId, userData: inputs.userData };
    if (versions.length === 0 || JSON.stringify(versions.at(-1)) !== JSON.stringify(content)) versions.push(content);
    templateVersions.set(id, versions);
    return versions.length;
}

/** The number an instance's declared version means now: a number, or the template's newest for `$Latest`/`$Default` (updateDefaultVersion). */
function resolvedVersion(launchTemplate: { id: string; version?: string } | undefined): number | undefined {
    if (!launchTemplate) return undefined;
    const newest = templateVersions.get(launchTemplate.id)?.length;
    const declared = launchTemplate.version ?? "$Default";
    return declared.startsWith("$") ? newest : Number(declared);
}

/**
 * Instance properties whose change makes a new instance: the provider's force-new ones the program
 * can change, and the instance type through the program's replaceOnChanges.
 */
const REPLACING_INSTANCE_PROPERTIES = ["instanceType", "subnetId", "availabilityZone", "keyName", "launchTemplate"];

/**
 * An instance's generation: one more than before when it is replaced in this run. Besides a changed
 * force-new input or `--replace`: an instance declared with `$Latest`/`$Default`, once a refresh has
 * read its version, whose template now has a newer version than it was launched from.
 */
function instanceGeneration(type: string, name: string, inputs: Record<string, any>, replacements: { replace?: string[] }, refresh: boolean): number {
    if (type !== "aws:ec2/instance:Instance") return 1;
    const prior = generations.get(name);
    const changed = prior && REPLACING_INSTANCE_PROPERTIES.some((k) => JSON.stringify(prior.inputs[k]) !== JSON.stringify(inputs[k]));
    const refreshed = (prior?.refreshed ?? false) || refresh;
    const launched = launchedFrom.get(name);
    const behind =
        refreshed &&
        launched !== undefined &&
        String(inputs.launchTemplate?.version ?? "$Default").startsWith("$") &&
        resolvedVersion(inputs.launchTemplate) !== launched.version;
    const replaced = changed || behind || replacements.replace?.includes(name);
    const generation = !prior ? 1 : prior.generation + (replaced ? 1 : 0);
    generations.set(name, { generation, inputs, refreshed: replaced ? false : refreshed });
    if (!prior || replaced) {
        // A new instance is launched from the version its declaration names now.
        const version = resolvedVersion(inputs.launchTemplate);
        const content = version === undefined ? undefined : templateVersions.get(inputs.launchTemplate.id)?.[version - 1];
        if (content) launchedFrom.set(name, { templateId: inputs.launchTemplate.id, version: version!, ...content });
        else launchedFrom.delete(name);
    }
    return generation;
}

function stableHash(text: string): string {
    return createHash("sha256").update(text).digest("hex");
}

/** 10.0.16.0/20 + node index → 10.0.16.10 + index: a stable private address per instance. */
function instanceAddress(subnetCidr: string, name: string, offset: number): string {
    const [base] = subnetCidr.split("/");
    const octets = base.split(".").map(Number);
    return `${octets[0]}.${octets[1]}.${octets[2]}.${hostNumber(name) + offset}`;
}

/** Host part of a node's example addresses: 10 + index for control-plane nodes, 110 + index for etcd. */
function hostNumber(name: string): number {
    return 10 + Number(/-(\d+)$/.exec(name)?.[1] ?? 0) + (name.includes("-etcd-") ? 100 : 0);
}

async function computeOutputs(
    type: string,
    name: string,
    inputs: Record<string, any>,
    subnets: Map<string, string>,
    generation: number,
): Promise<Record<string, any>> {
    switch (type) {
        case "tls:index/privateKey:PrivateKey":
            return privateKeyOutputs(inputs as any);
        case "tls:index/selfSignedCert:SelfSignedCert":
            return selfSignedCertOutputs(inputs as any);
        case "tls:index/certRequest:CertRequest":
            return certRequestOutputs(inputs as any);
        case "tls:index/locallySignedCert:LocallySignedCert":
            return locallySignedCertOutputs(inputs as any);
        case "random:index/randomString:RandomString": {
            const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789";
            const digest = stableHash(name);
            const result = Array.from({ length: inputs.length }, (_, i) => alphabet[parseInt(digest.slice(i * 2, i * 2 + 2), 16) % alphabet.length]).join("");
            return { result };
        }
        case "random:index/randomPassword:RandomPassword": {
            const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789";
            const digest = stableHash(`password:${name}`);
            const result = Array.from({ length: inputs.length }, (_, i) => alphabet[parseInt(digest.slice(i * 2, i * 2 + 2), 16) % alphabet.length]).join("");
            return { result };
        }
        case "aws:ec2/instance:Instance": {
            // A replacement is a new machine with a new address: 50 above its predecessor's.
            const privateIp = instanceAddress(subnets.get(inputs.subnetId) ?? "10.0.0.0/20", name, 50 * (generation - 1));
            return {
                privateIp,
                privateDns: `ip-${privateIp.replace(/\./g, "-")}.ec2.internal`,
                // TEST-NET-3: documentation addresses, never contacted.
                publicIp: `203.0.113.${hostNumber(name)}`,
                arn: `arn:aws:ec2:us-east-1:123456789012:instance/${name}`,
            };
        }
        case "aws:ec2/eip:Eip":
            // TEST-NET-2: documentation addresses, never contacted.
            return { publicIp: `198.51.100.${hostNumber(name.replace(/-address$/, ""))}`, allocationId: `eipalloc-${name}` };
        case "aws:ec2/launchTemplate:LaunchTemplate":
            return { latestVersion: 1, defaultVersion: 1 };
        case "aws:lb/loadBalancer:LoadBalancer":
            return {
                dnsName: `${name}-0123456789abcdef.elb.us-east-1.amazonaws.com`,
                arn: `arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/net/${name}`,
            };
        case "aws:ec2/keyPair:KeyPair":
            return { keyName: `${name}-key` };
        case "command:remote:Command":
            // wait-for-prepare prints the node's SSH host key, one per address and instance.
            return {
                stdout: /remote step: wait-for-prepare\n/.test(inputs.create ?? "") ? sshHostKey(`${inputs.connection?.host} ${inputs.triggers}`) : "",
                stderr: "",
            };
        case "aws:kms/key:Key":
            return { arn: `arn:aws:kms:us-east-1:123456789012:key/${name}`, keyId: `${name}-key-id` };
        case "aws:iam/instanceProfile:InstanceProfile":
        case "aws:iam/role:Role":
            // Named by the provider (a prefix and a suffix) when the program names none.
            return { arn: `arn:aws:iam::123456789012:${name}`, name: inputs.name ?? `${name}-0123abcd` };
        default:
            return { arn: `arn:aws:mock:::${name}` };
    }
}

/** An ed25519 public key as a .pub file holds it (wire format: type and key, each length-prefixed). */
function sshHostKey(seed: string): string {
    const field = (b: Buffer) => Buffer.concat([Buffer.from([0, 0, 0, b.length]), b]);
    const blob = Buffer.concat([field(Buffer.from("ssh-ed25519")), field(createHash("sha256").update(seed).digest())]);
    return `ssh-ed25519 ${blob.toString("base64")} root@localhost`;
}

/** The id a provider gives: random's RandomString its result (so it is never encrypted), RandomPassword "none". */
function providerId(type: string, id: string, outputs: Record<string, any>): string {
    if (type === "random:index/randomString:RandomString") return outputs.result;
    if (type === "random:index/randomPassword:RandomPassword") return "none";
    return id;
}

/** The marker the Pulumi runtime puts on a serialised secret. */
const SECRET_SIG = "4dabf18193072939515e22adb298388d";
const SECRET_VALUE = "1b47061264138c4ac30d75fd1eb44270";

function isSecretValue(v: any): boolean {
    return v !== null && typeof v === "object" && v[SECRET_SIG] === SECRET_VALUE;
}

function unwrapSecrets(v: any): any {
    if (v !== null && typeof v === "object" && v.__pulumiUnknown === true) return UNKNOWN;
    if (isSecretValue(v)) return unwrapSecrets(v.value);
    if (Array.isArray(v)) return v.map(unwrapSecrets);
    if (v !== null && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, unwrapSecrets(x)]));
    return v;
}

/** A value as the state holds it in plain text: each secret, at any depth, is "[secret]". */
function withoutSecrets(v: any): any {
    if (isSecretValue(v)) return "[secret]";
    if (v !== null && typeof v === "object" && v.__pulumiUnknown === true) return UNKNOWN;
    if (Array.isArray(v)) return v.map(withoutSecrets);
    if (v !== null && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, withoutSecrets(x)]));
    return v;
}

/** Stands for a value `pulumi preview` cannot know yet. */
export const UNKNOWN = "<unknown in preview>";

/** Recursively unwraps resolved Outputs; reports which top-level keys were secret. */
async function resolve(value: any, pulumi: typeof pulumiType): Promise<{ value: any; secret: boolean }> {
    if (pulumi.Output.isInstance(value)) {
        const inner = await new Promise<{ value: any; secret: boolean }>((done) => {
            const out = value as pulumiType.Output<any>;
            const internal = out as any;
            Promise.all([internal.isKnown, internal.isSecret]).then(([known, secret]: boolean[]) => {
                if (!known) done({ value: UNKNOWN, secret });
                else out.apply((v) => done({ value: v, secret }));
            });
        });
        const nested = await resolve(inner.value, pulumi);
        return { value: nested.value, secret: inner.secret || nested.secret };
    }
    if (Array.isArray(value)) {
        const items = await Promise.all(value.map((v) => resolve(v, pulumi)));
        return { value: items.map((i) => i.value), secret: items.some((i) => i.secret) };
    }
    if (value && typeof value === "object") {
        const entries = await Promise.all(Object.entries(value).map(async ([k, v]) => [k, await resolve(v, pulumi)] as const));
        return { value: Object.fromEntries(entries.map(([k, r]) => [k, r.value])), secret: entries.some(([, r]) => r.secret) };
    }
    return { value, secret: false };
}

/** Waits until no mocked registration is in flight for a few turns of the event loop. */
async function settle(inFlight: () => number, count: () => number): Promise<void> {
    let quiet = 0;
    let last = -1;
    while (quiet < 5) {
        await new Promise((r) => setTimeout(r, 5));
        if (inFlight() === 0 && count() === last) quiet++;
        else quiet = 0;
        last = count();
    }
}

/**
 * Runs index.ts with `config` (keys without the project prefix; lists as arrays) in a fresh module
 * registry, so each run has its own Pulumi runtime, and returns what it declared.
 */
export async function runProgram(config: Record<string, unknown>, options: RunOptions = {}): Promise<ProgramRun> {
    const preview = options.preview ?? false;
    const resources: RecordedResource[] = [];
    const invokes: InvokeRecord[] = [];
    const subnets = new Map<string, string>();
    const requests = new Map<string, RecordedResource["options"] & { dependsOn: string[] }>();
    let inFlight = 0;

    let pulumi!: typeof pulumiType;
    let program!: () => Promise<Record<string, unknown>>;
    const isolate = options.isolate ?? ((load: () => void) => load());
    isolate(() => {
        pulumi = require("@pulumi/pulumi");
        pulumi.runtime.setMocks(
            {
                newResource: async (args) => {
                    inFlight++;
                    try {
                        if (args.type === "pulumi:pulumi:StackReference") {
                            // A read, not a registration: the engine answers with the referenced stack's
                            // outputs and the names of its secret ones, in preview as in an update.
                            const read = { name: args.inputs.name, outputs: options.previousOutputs ?? {}, secretOutputNames: [] };
                            const readOptions = { parent: "", protect: false, ignoreChanges: [], replaceOnChanges: [] };
                            resources.push({
                                type: args.type,
                                name: args.name,
                                inputs: args.inputs,
                                secretInputs: [],
                                state: read,
                                dependsOn: [],
                                options: readOptions,
                            });
                            return { id: args.id, state: read };
                        }
                        const secretInputs = Object.keys(args.inputs).filter((k) => isSecretValue(args.inputs[k]));
                        const inputs = unwrapSecrets(args.inputs);
                        const id0 = `${args.name}-id`;
                        // A preview creates no version.
                        const latestVersion = !preview && args.type === "aws:ec2/launchTemplate:LaunchTemplate" ? templateVersion(id0, inputs) : undefined;
                        const generation = options.replacements
                            ? instanceGeneration(args.type, args.name, inputs, options.replacements, options.refresh ?? false)
                            : 1;
                        const id = generation > 1 ? `${args.name}-id-g${generation}` : id0;
                        if (args.type === "aws:ec2/subnet:Subnet") subnets.set(id, inputs.cidrBlock);
                        const key = `${args.type}::${args.name}::g${generation}::${stableHash(JSON.stringify(inputs))}`;
                        let computed: Record<string, any> = {};
                        if (!preview) {
                            // A certificate within its early renewal period is replaced, as @pulumi/tls plans it.
                            const renew =
                                CERTIFICATE_TYPES.has(args.type) && state.has(key) && readyForRenewal(state.get(key)!.certPem, inputs.earlyRenewalHours);
                            if (!state.has(key) || renew) state.set(key, await computeOutputs(args.type, args.name, inputs, subnets, generation));
                            computed = state.get(key)!;
                            // EC2 numbers a template's versions; an instance reports the image it was launched with.
                            if (latestVersion !== undefined) computed = { ...computed, latestVersion, defaultVersion: latestVersion };
                            if (args.type === "aws:ec2/instance:Instance") {
                                const launched = launchedFrom.get(args.name);
                                computed = { ...computed, ami: launched?.imageId ?? templateVersions.get(inputs.launchTemplate?.id)?.at(-1)?.imageId };
                            }
                        }
                        const recordedId = preview ? undefined : providerId(args.type, id, computed);
                        const request = requests.get(`${args.type}::${args.name}`)!;
                        const { dependsOn, ...requestOptions } = request;
                        resources.push({
                            type: args.type,
                            name: args.name,
                            inputs,
                            secretInputs,
                            plainInputs: withoutSecrets(args.inputs),
                            id: recordedId,
                            state: computed,
                            dependsOn,
                            options: requestOptions,
                            provider: args.provider ? nameOfUrn(args.provider.split("::").slice(0, -1).join("::")) : undefined,
                        });
                        return { id: recordedId, state: { ...args.inputs, ...computed } };
                    } finally {
                        inFlight--;
                    }
                },
                call: (args) => {
                    invokes.push({ token: args.token, inputs: args.inputs });
                    switch (args.token) {
                        case "aws:index/getAvailabilityZones:getAvailabilityZones":
                            return { names: options.regionZones ?? REGION_ZONES, region: (options.regionZones ?? REGION_ZONES)[0]?.slice(0, -1) };
                        case "aws:ec2/getInstanceType:getInstanceType": {
                            const facts = INSTANCE_TYPES[args.inputs.instanceType];
                            if (!facts) throw new Error(`InvalidInstanceType: ${args.inputs.instanceType}`);
                            return { instanceType: args.inputs.instanceType, ...facts };
                        }
                        case "aws:ec2/getInstanceTypeOfferings:getInstanceTypeOfferings": {
                            const filter = (name: string): string[] | undefined => args.inputs.filters?.find((f: any) => f.name === name)?.values;
                            const types = filter("instance-type") ?? Object.keys(INSTANCE_TYPES);
                            const zones = filter("location") ?? options.regionZones ?? REGION_ZONES;
                            const offered = zones.flatMap((zone) =>
                                types.filter((type) => !options.notOffered?.[zone]?.includes(type)).map((type) => ({ type, zone })),
                            );
                            return {
                                instanceTypes: offered.map((o) => o.type),
                                locations: offered.map((o) => o.zone),
                                locationTypes: offered.map(() => args.inputs.locationType ?? "region"),
                            };
                        }
                        case "aws:ec2/getAmi:getAmi": {
                            const arch = args.inputs.filters.find((f: any) => f.name === "architecture").values[0];
                            const newest = options.images?.[arch as "x86_64" | "arm64"];
                            return { id: newest ?? (arch === "arm64" ? "ami-0a1b2c3d4e5f60718" : "ami-0f1e2d3c4b5a69788"), architecture: arch };
                        }
                        default:
                            throw new Error(`unmocked invoke ${args.token}`);
                    }
                },
            },
            "kubeadm-ha",
            "test",
            preview,
            // What the CLI passes on a self-managed (file://, s3://) backend.
            "organization",
        );
        // The mocks see only type, name and inputs; record the request's dependencies and options too.
        const monitor = pulumi.runtime.getMonitor() as any;
        const register = monitor.registerResource.bind(monitor);
        monitor.registerResource = (req: any, callback: any) => {
            requests.set(`${req.getType()}::${req.getName()}`, {
                dependsOn: req.getDependenciesList().map(nameOfUrn),
                parent: nameOfUrn(req.getParent()),
                protect: req.getProtect(),
                ignoreChanges: req.getIgnorechangesList(),
                replaceOnChanges: req.getReplaceonchangesList(),
                additionalSecretOutputs: req.getAdditionalsecretoutputsList(),
                aliases: req.getAliasesList().map((a: any) => a.getSpec()?.getName() || nameOfUrn(a.getUrn())),
            });
            return register(req, callback);
        };
        pulumi.runtime.setAllConfig(
            Object.fromEntries(Object.entries(config).map(([k, v]) => [`kubeadm-ha:${k}`, typeof v === "string" ? v : JSON.stringify(v)])),
        );
        program = require("../../index");
    });

    const exported = await program();
    const outputs: Record<string, any> = {};
    const plainOutputs: Record<string, any> = {};
    const secretOutputs: string[] = [];
    for (const [k, v] of Object.entries(exported)) {
        const { value, secret } = await resolve(v, pulumi);
        outputs[k] = value;
        plainOutputs[k] = secret ? "[secret]" : value;
        if (secret) secretOutputs.push(k);
    }
    await settle(
        () => inFlight,
        () => resources.length,
    );

    return {
        resources,
        invokes,
        outputs,
        secretOutputs,
        plainOutputs,
        ofType: (type) => resources.filter((r) => r.type === type),
        waitsFor: (name, other) => {
            const seen = new Set<string>();
            const stack = [name];
            while (stack.length > 0) {
                const next = stack.pop();
                // A resource also waits for the provider it is sent through.
                for (const dep of resources.filter((r) => r.name === next).flatMap((r) => [...r.dependsOn, ...(r.provider ? [r.provider] : [])])) {
                    if (dep === other) return true;
                    if (!seen.has(dep)) {
                        seen.add(dep);
                        stack.push(dep);
                    }
                }
            }
            return false;
        },
        named: (name) => {
            const found = resources.find((r) => r.name === name);
            if (!found) throw new Error(`no resource named ${name}; have ${resources.map((r) => r.name).join(", ")}`);
            return found;
        },
    };
}
