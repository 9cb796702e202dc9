/**
 * Offline render: everything the program will place and run on each node, for review before
 * `pulumi up`, with no AWS credentials and no Pulumi CLI.
 *
 *   npm run render -- --stack <name | path/to/Pulumi.<name>.yaml> [--out <dir>]
 *
 * It runs the program itself under the offline engine (the same planning and rendering code, no
 * second templating path), with example addresses and freshly generated example certificates, and
 * writes per node: user data, each remote step's command line in order, kubeadm documents, the PKI
 * files it receives, the etcd unit; plus the example kubeconfig and a summary.
 */
import { X509Certificate } from "node:crypto";
import { mkdirSync, readFileSync, rmSync, writeFileSync, existsSync, readdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { parse } from "yaml";
import { CostEstimate, formatCostEstimate } from "../core/cost";
import { ProgramRun, RecordedResource, runProgram, zonesOf } from "./offline/engine";
import { commandsInOrder, criticalPath } from "./offline/graph";

const PROJECT_DIR = resolve(__dirname, "..");
const INSTANCE_TYPE = "aws:ec2/instance:Instance";

export interface RenderResult {
    outDir: string;
    summary: string;
    files: string[];
}

/**
 * A stack's own config as the program reads it: keys without the project prefix, lists as JSON.
 * `stack` names a stack of this project, or is the path of a stack file.
 */
export function readStackConfig(stack: string): { config: Record<string, string>; region: string } {
    const file = stack.endsWith(".yaml") ? resolve(stack) : join(PROJECT_DIR, `Pulumi.${stack}.yaml`);
    if (!existsSync(file)) {
        const stacks = readdirSync(PROJECT_DIR)
            .map((f) => /^Pulumi\.(.+)\.yaml$/.exec(f)?.[1])
            .filter((s): s is string => s !== undefined);
        throw new Error(`no stack file Pulumi.${stack}.yaml; stacks here: ${stacks.join(", ")}`);
    }
    const raw = (parse(readFileSync(file, "utf8"))?.config ?? {}) as Record<string, unknown>;
    const config: Record<string, string> = {};
    for (const [key, value] of Object.entries(raw)) {
        if (key.startsWith("kubeadm-ha:")) config[key.slice("kubeadm-ha:".length)] = typeof value === "string" ? value : JSON.stringify(value);
    }
    return { config, region: typeof raw["aws:region"] === "string" ? (raw["aws:region"] as string) : "us-east-1" };
}

/** Decodes a place-pki stdin ("<mode> <path> <base64>" lines). */
function pkiFiles(stdin: string): { path: string; content: string }[] {
    return stdin
        .trim()
        .split("\n")
        .map((line) => line.split(" "))
        .map(([, path, data]) => ({ path, content: Buffer.from(data, "base64").toString("utf8") }));
}

/** The user data an instance boots with: its launch template's, decoded. */
export function userDataOf(run: ProgramRun, instance: RecordedResource): string {
    const template = run.ofType("aws:ec2/launchTemplate:LaunchTemplate").find((t) => instance.dependsOn.includes(t.name));
    if (!template) throw new Error(`no launch template for ${instance.name}`);
    return Buffer.from(template.inputs.userData, "base64").toString("utf8");
}

/** The systemd unit an etcd-member step installs, as its script carries it. */
function etcdUnitOf(create: string): string | undefined {
    return /^ETCD_UNIT='([^']*)'$/m.exec(create)?.[1];
}

export async function render(stack: string, outDir: string, run?: ProgramRun): Promise<RenderResult> {
    const { config, region } = readStackConfig(stack);
    const result = run ?? (await runProgram(config, { regionZones: zonesOf(region) }));
    rmSync(outDir, { recursive: true, force: true });
    const files: string[] = [];
    const write = (path: string, content: string) => {
        const full = join(outDir, path);
        mkdirSync(dirname(full), { recursive: true });
        writeFileSync(full, content, { mode: /\.(key|stdin)$|kubeconfig$/.test(path) ? 0o600 : 0o644 });
        files.push(path);
    };

    const instances = result.ofType(INSTANCE_TYPE);
    // Steps connect to each node's Elastic IP; a node's user data is its tier's launch template's.
    const nodeByHost = new Map(result.ofType("aws:ec2/eip:Eip").map((eip) => [eip.state.publicIp as string, String(eip.inputs.instance).replace(/-id$/, "")]));
    for (const instance of instances) write(join(instance.name, "user-data.sh"), userDataOf(result, instance));

    // The earliest expiry among the certificates the program places on the nodes (CAs included).
    let programIssued: { name: string; expires: Date } | undefined;
    const ordered = commandsInOrder(result);
    const counters = new Map<string, number>();
    const orderLines: string[] = [];
    for (const { command, stage } of ordered) {
        const node = nodeByHost.get(command.inputs.connection.host) ?? "unknown-node";
        const n = (counters.get(node) ?? 0) + 1;
        counters.set(node, n);
        const step = `${String(n).padStart(2, "0")}-${command.name}`;
        write(join(node, "steps", `${step}.sh`), command.inputs.create);
        if (command.inputs.delete) write(join(node, "steps", `${step}.on-delete.sh`), command.inputs.delete);
        const stdin: string | undefined = command.inputs.stdin;
        if (stdin?.includes("apiVersion: kubeadm.k8s.io/")) {
            write(join(node, "steps", `${step}.kubeadm.yaml`), stdin);
        } else if (stdin && /^0[0-7]{3} \S+ \S+$/m.test(stdin)) {
            for (const file of pkiFiles(stdin)) {
                write(join(node, "pki", file.path), file.content);
                if (file.path.endsWith(".crt")) {
                    const expires = new Date(new X509Certificate(file.content).validTo);
                    if (!programIssued || expires < programIssued.expires) programIssued = { name: `${node}/${file.path}`, expires };
                }
            }
        } else if (stdin) {
            write(join(node, "steps", `${step}.stdin`), stdin);
        }
        const unit = etcdUnitOf(command.inputs.create);
        if (unit) write(join(node, "etcd.service"), unit);
        orderLines.push(`${String(stage).padStart(2)}  ${command.name}  (on ${node})`);
    }
    write("kubeconfig", result.outputs.kubeconfig);

    const nodeLines = instances.map((i) => {
        const role = i.inputs.tags["kubeadm-ha/role"];
        return `- ${i.name}: ${role}, ${i.inputs.availabilityZone}, ${i.state.privateIp}, ${i.inputs.instanceType}`;
    });
    const summary = [
        `# kubeadm-ha render of stack ${stack} (example addresses and certificates)`,
        "",
        `topology: ${result.outputs.etcdTopology} etcd`,
        `zones: ${[...new Set(instances.map((i) => i.inputs.availabilityZone))].join(", ")}`,
        `API endpoint: ${result.outputs.apiEndpoint}`,
        ...(result.outputs.etcdEndpoints.length > 0 ? [`etcd endpoints: ${result.outputs.etcdEndpoints.join(", ")}`] : []),
        "",
        "nodes:",
        ...nodeLines,
        "",
        "certificates:",
        `- issued by the program: earliest ${programIssued ? `${programIssued.expires.toISOString()} (${programIssued.name})` : "none placed"}; re-issued by any pulumi up within certificateRenewalDays of its expiry`,
        `- issued by kubeadm on the nodes: ${result.outputs.certificates?.earliestExpiry ?? "a year from each node's init or join"}; the stack output certificates.earliestExpiry has it once deployed, renewed by pulumi up within certificateRenewalDays and by each node's timer within 30 days`,
        "",
        `bootstrap order (stage, step): ${criticalPath(result)} stages on the critical path`,
        ...orderLines,
        "",
        // The program's own estimate (its costEstimate output), for the region the stack names.
        ...formatCostEstimate(result.outputs.costEstimate as CostEstimate),
        "",
    ].join("\n");
    write("SUMMARY.md", summary);
    return { outDir, summary, files };
}

async function main(): Promise<void> {
    const { values } = parseArgs({ options: { stack: { type: "string", default: "dev" }, out: { type: "string" } } });
    const stack = values.stack!;
    const outDir = resolve(values.out ?? join(PROJECT_DIR, "render", stack.replace(/^.*Pulumi\.|\.yaml$/g, "")));
    try {
        const { summary, files } = await render(stack, outDir);
        process.stdout.write(`${summary}\nwrote ${files.length} files to ${outDir}\n`);
    } catch (err) {
        // Configuration errors read exactly as `pulumi preview` prints them.
        process.stderr.write(`error: ${(err as Error).message}\n`);
        process.exitCode = 1;
    }
}

if (require.main === module) {
    void main();
}
