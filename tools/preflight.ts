/**
 * Preflight: what `npm run up`, `npm run preview` and `npm run destroy` check before the Pulumi CLI
 * starts, so that a missing credential or a closed SSH path stops the run at once, with what to set
 * and how, instead of failing minutes in.
 *
 *   sucrase-node tools/preflight.ts --stack <name | path/to/Pulumi.<name>.yaml> [--command up|preview|destroy]
 *
 * It reads files and the environment only, and makes at most two short network calls: the EC2
 * instance metadata service (1 s, only when no other AWS credentials are found) and
 * https://checkip.amazonaws.com (3 s, only when sshAllowedCidrs is narrower than 0.0.0.0/0).
 *
 * 1. AWS credentials can be found where the AWS provider looks: AWS_ACCESS_KEY_ID and
 *    AWS_SECRET_ACCESS_KEY; the stack's aws:accessKey/aws:secretKey or aws:profile; the profile named
 *    by AWS_PROFILE, else the default profile, in ~/.aws/credentials or ~/.aws/config (keys,
 *    `aws configure sso`, `aws login`, credential_process or an assumed role); a web identity token
 *    (AWS_WEB_IDENTITY_TOKEN_FILE with AWS_ROLE_ARN); a container's credentials endpoint; an EC2
 *    instance role. They are found, not verified: expired credentials still fail in the CLI.
 * 2. The stack's secrets passphrase is set (PULUMI_CONFIG_PASSPHRASE or PULUMI_CONFIG_PASSPHRASE_FILE)
 *    when the state backend is not Pulumi Cloud (Pulumi.yaml keeps it in file://~) and the stack
 *    does not name another secrets provider.
 * 3. kubeadm-ha:sshAllowedCidrs contains this machine's public address: the bootstrap runs over SSH
 *    from here. The address is KUBEADM_HA_DEPLOYER_IP when set, else looked up at
 *    https://checkip.amazonaws.com; when the lookup fails the check is skipped with a warning. For
 *    `preview`, which opens no SSH connection, a mismatch is only a warning.
 *
 * Exit status: 0 when the run may go on (warnings are printed), 1 with every problem found, 2 on a
 * usage error. KUBEADM_HA_SKIP_PREFLIGHT=1 skips every check.
 */
import { accessSync, constants, existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { basename, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { Address4 } from "ip-address";
import { parse } from "yaml";
import { isCidr, parseCidr, size } from "../core/cidr";

const PROJECT_DIR = resolve(__dirname, "..");
export const ADDRESS_LOOKUP_URL = "https://checkip.amazonaws.com";
const ADDRESS_LOOKUP_TIMEOUT_MS = 3000;
const IMDS_TIMEOUT_MS = 1000;
const PULUMI_CLOUD = "https://api.pulumi.com";

export type Command = "up" | "preview" | "destroy";
export const COMMANDS: readonly Command[] = ["up", "preview", "destroy"];

/** What the EC2 instance metadata service says about an instance role. */
export type InstanceRole = "role" | "no-role" | "unreachable";

export interface PreflightInput {
    command: Command;
    /** A stack name, or the path of a stack file (Pulumi.<name>.yaml). */
    stack: string;
    env: Record<string, string | undefined>;
    home: string;
    /** The directory holding Pulumi.yaml and the stack files. */
    projectDir?: string;
    /** This machine's public IPv4 address, as the internet sees it. */
    lookupPublicAddress?: () => Promise<string>;
    /** Whether this machine is an EC2 instance with a role, asked at the metadata endpoint. */
    probeInstanceRole?: (endpoint: string) => Promise<InstanceRole>;
}

export interface PreflightReport {
    stack: string;
    /** Each one stops the run; each says what to set and how. */
    problems: string[];
    warnings: string[];
    /** What was found, for the one-line summary of a passing run. */
    found: string[];
}

type Yaml = Record<string, unknown>;

function readYaml(file: string): Yaml {
    if (!existsSync(file)) return {};
    const parsed: unknown = parse(readFileSync(file, "utf8"));
    return parsed !== null && typeof parsed === "object" ? (parsed as Yaml) : {};
}

function stackFileOf(stack: string, projectDir: string): { name: string; file: string } {
    if (stack.endsWith(".yaml")) {
        const file = resolve(stack);
        return { name: /^Pulumi\.(.+)\.yaml$/.exec(basename(file))?.[1] ?? stack, file };
    }
    // A fully qualified name (org/project/stack) keeps its settings in Pulumi.<stack>.yaml.
    const name = stack.split("/").pop() ?? stack;
    return { name, file: join(projectDir, `Pulumi.${name}.yaml`) };
}

const isSet = (v: string | undefined): v is string => v !== undefined && v !== "";

/* ------------------------------------------------------------------------------------------------ */
/* AWS credentials                                                                                   */
/* ------------------------------------------------------------------------------------------------ */

/** The sections of an INI file (the AWS config and credentials files), keys lowercased. */
export function iniSections(text: string): Map<string, Map<string, string>> {
    const sections = new Map<string, Map<string, string>>();
    let current: Map<string, string> | undefined;
    for (const raw of text.split(/\r?\n/)) {
        const line = raw.trim();
        if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
        const header = /^\[\s*([^\]]+?)\s*\]$/.exec(line);
        if (header) {
            current = sections.get(header[1]) ?? new Map();
            sections.set(header[1], current);
            continue;
        }
        const setting = /^([^=]+?)\s*=\s*(.*)$/.exec(line);
        if (setting && current) current.set(setting[1].toLowerCase(), setting[2]);
    }
    return sections;
}

/** Settings that give a profile credentials, one way or another. */
const CREDENTIAL_SETTINGS = ["credential_process", "sso_session", "sso_start_url", "role_arn", "web_identity_token_file", "login_session"];

function hasCredentials(settings: Map<string, string>): boolean {
    if (isSet(settings.get("aws_access_key_id")) && isSet(settings.get("aws_secret_access_key"))) return true;
    return CREDENTIAL_SETTINGS.some((s) => isSet(settings.get(s)));
}

interface AwsFiles {
    credentialsFile: string;
    configFile: string;
    /** A profile's settings, from both files as the SDKs merge them; undefined when neither has it. */
    profile(name: string): { files: string[]; settings: Map<string, string> } | undefined;
}

function awsFiles(env: PreflightInput["env"], home: string): AwsFiles {
    const credentialsFile = env.AWS_SHARED_CREDENTIALS_FILE || join(home, ".aws", "credentials");
    const configFile = env.AWS_CONFIG_FILE || join(home, ".aws", "config");
    const read = (file: string) => (existsSync(file) ? iniSections(readFileSync(file, "utf8")) : new Map<string, Map<string, string>>());
    const credentials = read(credentialsFile);
    const config = read(configFile);
    return {
        credentialsFile,
        configFile,
        profile(name) {
            // The config file names profiles "[profile x]", except the default one, "[default]".
            const fromConfig = name === "default" ? (config.get("default") ?? config.get("profile default")) : config.get(`profile ${name}`);
            const fromCredentials = credentials.get(name);
            if (!fromConfig && !fromCredentials) return undefined;
            return {
                files: [...(fromCredentials ? [credentialsFile] : []), ...(fromConfig ? [configFile] : [])],
                settings: new Map([...(fromConfig ?? []), ...(fromCredentials ?? [])]),
            };
        },
    };
}

const tilde = (path: string, home: string) => (path.startsWith(home + "/") ? `~${path.slice(home.length)}` : path);

const HOW_TO_SET_AWS_CREDENTIALS = [
    "Set one of:",
    "      export AWS_PROFILE=<profile>    a profile made by `aws configure`, `aws configure sso` or `aws login`",
    "      export AWS_ACCESS_KEY_ID=<key id> AWS_SECRET_ACCESS_KEY=<secret>   (and AWS_SESSION_TOKEN for temporary keys)",
    "    or run on an EC2 instance or in a container with an IAM role. The credentials must be allowed to manage EC2, VPC and ELB.",
].join("\n");

async function checkAwsCredentials(input: PreflightInput, stackConfig: Yaml, report: PreflightReport): Promise<void> {
    const { env, home } = input;
    const keyId = isSet(env.AWS_ACCESS_KEY_ID);
    const secret = isSet(env.AWS_SECRET_ACCESS_KEY);
    if (keyId && secret) {
        report.found.push("AWS credentials from AWS_ACCESS_KEY_ID");
        return;
    }
    if (keyId !== secret) {
        const [have, missing] = keyId ? ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"] : ["AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID"];
        report.problems.push(`${have} is set but ${missing} is not: set both (export ${missing}=...), or unset ${have} to use a profile.`);
        return;
    }
    if (stackConfig["aws:accessKey"] !== undefined && stackConfig["aws:secretKey"] !== undefined) {
        report.found.push("AWS credentials from the stack's aws:accessKey");
        return;
    }

    const files = awsFiles(env, home);
    const where = (or: string) => `${tilde(files.credentialsFile, home)} ${or} ${tilde(files.configFile, home)}`;
    const stackProfile = typeof stackConfig["aws:profile"] === "string" ? (stackConfig["aws:profile"] as string) : undefined;
    const named =
        stackProfile !== undefined
            ? { name: stackProfile, by: "the stack's aws:profile" }
            : isSet(env.AWS_PROFILE)
              ? { name: env.AWS_PROFILE, by: "AWS_PROFILE" }
              : undefined;
    if (named) {
        const profile = files.profile(named.name);
        if (!profile) {
            report.problems.push(
                `${named.by} names the AWS profile "${named.name}", which is in neither ${where("nor")}. Create it (aws configure --profile ${named.name}, or aws configure sso) or name one that exists (aws configure list-profiles).`,
            );
        } else if (!hasCredentials(profile.settings)) {
            report.problems.push(
                `The AWS profile "${named.name}" (${named.by}) in ${profile.files.map((f) => tilde(f, home)).join(" and ")} holds no credentials: no access key, SSO session, login session, credential_process or role. Set them up with aws configure --profile ${named.name}, aws configure sso or aws login --profile ${named.name}.`,
            );
        } else {
            report.found.push(`AWS credentials from profile ${named.name}`);
        }
        return;
    }
    if (isSet(env.AWS_WEB_IDENTITY_TOKEN_FILE) && isSet(env.AWS_ROLE_ARN)) {
        report.found.push("AWS credentials from a web identity token");
        return;
    }
    if (isSet(env.AWS_CONTAINER_CREDENTIALS_RELATIVE_URI) || isSet(env.AWS_CONTAINER_CREDENTIALS_FULL_URI)) {
        report.found.push("AWS credentials from the container's credentials endpoint");
        return;
    }
    const fallback = files.profile("default");
    if (fallback && hasCredentials(fallback.settings)) {
        report.found.push("AWS credentials from the default profile");
        return;
    }
    let instance: InstanceRole = "unreachable";
    if (env.AWS_EC2_METADATA_DISABLED?.toLowerCase() !== "true") {
        const endpoint = env.AWS_EC2_METADATA_SERVICE_ENDPOINT || "http://169.254.169.254";
        instance = await (input.probeInstanceRole ?? probeInstanceRole)(endpoint);
        if (instance === "role") {
            report.found.push("AWS credentials from the EC2 instance role");
            return;
        }
    }
    const onInstance = instance === "no-role" ? " This EC2 instance has no IAM role attached." : "";
    report.problems.push(
        `No AWS credentials found (no AWS_* variables, no default profile in ${where("or")}).${onInstance}\n    ${HOW_TO_SET_AWS_CREDENTIALS}`,
    );
}

/** Asks the instance metadata service (IMDSv2) whether this machine has an instance role. */
export async function probeInstanceRole(endpoint: string): Promise<InstanceRole> {
    const base = endpoint.replace(/\/+$/, "");
    try {
        const token = await fetch(`${base}/latest/api/token`, {
            method: "PUT",
            headers: { "X-aws-ec2-metadata-token-ttl-seconds": "60" },
            signal: AbortSignal.timeout(IMDS_TIMEOUT_MS),
        });
        if (!token.ok) return "unreachable";
        const roles = await fetch(`${base}/latest/meta-data/iam/security-credentials/`, {
            headers: { "X-aws-ec2-metadata-token": await token.text() },
            signal: AbortSignal.timeout(IMDS_TIMEOUT_MS),
        });
        return roles.ok && (await roles.text()).trim() !== "" ? "role" : "no-role";
    } catch {
        return "unreachable";
    }
}

/* ------------------------------------------------------------------------------------------------ */
/* Secrets passphrase                                                                                */
/* ------------------------------------------------------------------------------------------------ */

/** The state backend the CLI will use: PULUMI_BACKEND_URL, else Pulumi.yaml's backend.url, else the login. */
export function backendUrl(env: PreflightInput["env"], home: string, project: Yaml): string {
    if (isSet(env.PULUMI_BACKEND_URL)) return env.PULUMI_BACKEND_URL;
    const backend = project.backend as { url?: unknown } | undefined;
    if (typeof backend?.url === "string" && backend.url !== "") return backend.url;
    const credentials = join(env.PULUMI_HOME || join(home, ".pulumi"), "credentials.json");
    try {
        const current = (JSON.parse(readFileSync(credentials, "utf8")) as { current?: unknown }).current;
        if (typeof current === "string" && current !== "") return current;
    } catch {
        // Not logged in anywhere: the CLI will ask to log in to Pulumi Cloud.
    }
    return PULUMI_CLOUD;
}

function checkPassphrase(input: PreflightInput, project: Yaml, stackFile: Yaml, stack: string, report: PreflightReport): void {
    const { env, home } = input;
    const backend = backendUrl(env, home, project);
    const cloud = /^https?:\/\//.test(backend);
    const provider = typeof stackFile.secretsprovider === "string" ? stackFile.secretsprovider : undefined;
    const usesPassphrase = stackFile.encryptionsalt !== undefined || (provider === undefined ? !cloud : provider === "passphrase");
    if (!usesPassphrase) return;

    if (env.PULUMI_CONFIG_PASSPHRASE !== undefined) {
        if (env.PULUMI_CONFIG_PASSPHRASE === "")
            report.warnings.push("PULUMI_CONFIG_PASSPHRASE is empty: the stack's secrets are encrypted with an empty passphrase.");
        report.found.push("the secrets passphrase from PULUMI_CONFIG_PASSPHRASE");
        return;
    }
    if (isSet(env.PULUMI_CONFIG_PASSPHRASE_FILE)) {
        const file = resolve(env.PULUMI_CONFIG_PASSPHRASE_FILE);
        try {
            accessSync(file, constants.R_OK);
            report.found.push("the secrets passphrase from PULUMI_CONFIG_PASSPHRASE_FILE");
        } catch {
            report.problems.push(
                `PULUMI_CONFIG_PASSPHRASE_FILE=${env.PULUMI_CONFIG_PASSPHRASE_FILE} cannot be read (${tilde(file, home)}). Point it at the file that holds the passphrase, or set PULUMI_CONFIG_PASSPHRASE instead.`,
            );
        }
        return;
    }
    report.problems.push(
        [
            `PULUMI_CONFIG_PASSPHRASE is not set. Stack ${stack} keeps its state ${backend.startsWith("file://") ? `on this machine (${backend})` : `in ${backend}`} and encrypts its secrets (the cluster CA keys, the SSH key, the kubeconfig) with a passphrase.`,
            "    Choose one and keep it: every later up, destroy and `pulumi stack output --show-secrets` needs the same one.",
            "      export PULUMI_CONFIG_PASSPHRASE='<a long passphrase>'",
            "    or keep it in a file readable only by you:",
            "      export PULUMI_CONFIG_PASSPHRASE_FILE=<path of that file>",
        ].join("\n"),
    );
}

/* ------------------------------------------------------------------------------------------------ */
/* SSH path                                                                                          */
/* ------------------------------------------------------------------------------------------------ */

/** This machine's public IPv4 address from https://checkip.amazonaws.com. */
export async function lookupPublicAddress(): Promise<string> {
    const response = await fetch(ADDRESS_LOOKUP_URL, { signal: AbortSignal.timeout(ADDRESS_LOOKUP_TIMEOUT_MS) });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    return (await response.text()).trim();
}

function isIpv4(text: string): boolean {
    return /^\d{1,3}(\.\d{1,3}){3}$/.test(text) && Address4.isValid(text);
}

/** The sshAllowedCidrs a stack runs with: its own value, else the default in Pulumi.yaml. */
function sshAllowedCidrs(project: Yaml, stackConfig: Yaml): string[] | undefined {
    let value: unknown = stackConfig["kubeadm-ha:sshAllowedCidrs"];
    if (value === undefined) value = ((project.config as Yaml | undefined)?.sshAllowedCidrs as Yaml | undefined)?.default;
    if (typeof value === "string") {
        try {
            value = JSON.parse(value);
        } catch {
            return undefined;
        }
    }
    return Array.isArray(value) && value.every((v) => typeof v === "string") ? value : undefined;
}

async function checkSshPath(input: PreflightInput, project: Yaml, stackConfig: Yaml, stack: string, report: PreflightReport): Promise<void> {
    const listed = sshAllowedCidrs(project, stackConfig);
    // Appending to the stack's own list keeps it; a stack without one starts its list with this address.
    const ownList = stackConfig["kubeadm-ha:sshAllowedCidrs"] !== undefined;
    // Anything unreadable or invalid is for the program's config validation to report.
    const blocks = (listed ?? []).map((text) => ({ text, cidr: parseCidr(text) })).filter((b) => isCidr(b.cidr));
    if (blocks.length === 0) return;
    if (blocks.some((b) => isCidr(b.cidr) && b.cidr.prefix === 0)) {
        report.found.push("SSH open to every address");
        return;
    }

    let address: string;
    let source: string;
    const given = input.env.KUBEADM_HA_DEPLOYER_IP?.trim();
    if (isSet(given)) {
        if (!isIpv4(given)) {
            report.problems.push(`KUBEADM_HA_DEPLOYER_IP=${given} is not an IPv4 address; set it to this machine's public address, e.g. 203.0.113.7.`);
            return;
        }
        [address, source] = [given, "KUBEADM_HA_DEPLOYER_IP"];
    } else {
        try {
            address = await (input.lookupPublicAddress ?? lookupPublicAddress)();
            if (!isIpv4(address)) throw new Error(`the answer was not an IPv4 address`);
            source = ADDRESS_LOOKUP_URL;
        } catch (error) {
            report.warnings.push(
                `Could not look up this machine's public address at ${ADDRESS_LOOKUP_URL} (${(error as Error).message}), so kubeadm-ha:sshAllowedCidrs was not checked. Set KUBEADM_HA_DEPLOYER_IP=<your public address> to check it offline.`,
            );
            return;
        }
    }

    const value = new Address4(address).bigInt();
    const inside = blocks.find((b) => isCidr(b.cidr) && value >= b.cidr.base && value < b.cidr.base + size(b.cidr));
    if (inside) {
        report.found.push(`SSH from ${address} allowed by ${inside.text}`);
        return;
    }
    const message = [
        `kubeadm-ha:sshAllowedCidrs (${blocks.map((b) => b.text).join(", ")}) does not contain this machine's public address ${address} (from ${source}).`,
        "    The bootstrap runs kubeadm over SSH from this machine; it would time out once the instances are up. Add the address:",
        `      npx pulumi config set --stack ${stack} --path 'sshAllowedCidrs[${ownList ? (listed ?? []).length : 0}]' ${address}/32`,
        "    or, if SSH leaves this machine from another address than HTTPS does, export KUBEADM_HA_DEPLOYER_IP=<that address>.",
    ].join("\n");
    if (input.command === "preview") report.warnings.push(`${message}\n    (A preview opens no SSH connection; \`npm run up\` will stop here.)`);
    else report.problems.push(message);
}

/* ------------------------------------------------------------------------------------------------ */

/** Runs every check and collects what it finds; prints nothing. */
export async function preflight(input: PreflightInput): Promise<PreflightReport> {
    const projectDir = input.projectDir ?? PROJECT_DIR;
    const { name, file } = stackFileOf(input.stack, projectDir);
    const project = readYaml(join(projectDir, "Pulumi.yaml"));
    const stackFile = readYaml(file);
    const stackConfig = (stackFile.config ?? {}) as Yaml;
    const report: PreflightReport = { stack: name, problems: [], warnings: [], found: [] };
    await checkAwsCredentials(input, stackConfig, report);
    checkPassphrase(input, project, stackFile, name, report);
    // A destroy opens no SSH connection: no remote step has a delete command.
    if (input.command !== "destroy") await checkSshPath(input, project, stackConfig, name, report);
    return report;
}

/** The report as the user sees it: problems and warnings on stderr, a one-line summary on stdout. */
export function formatReport(report: PreflightReport, command: Command): { stdout: string; stderr: string } {
    const warnings = report.warnings.map((w) => `warning: ${w}\n`).join("");
    if (report.problems.length === 0) {
        return { stdout: `preflight: stack ${report.stack}: ${report.found.join("; ") || "nothing to check"}\n`, stderr: warnings };
    }
    const count = report.problems.length === 1 ? "1 thing" : `${report.problems.length} things`;
    const problems = report.problems.map((p) => `  - ${p}\n`).join("");
    return {
        stdout: "",
        stderr:
            `${warnings}preflight: stack ${report.stack}: ${count} to set before \`pulumi ${command}\`:\n${problems}` +
            "(These checks run before every npm run up, preview and destroy; KUBEADM_HA_SKIP_PREFLIGHT=1 skips them.)\n",
    };
}

async function main(): Promise<number> {
    let values: { stack?: string; command?: string };
    try {
        ({ values } = parseArgs({ options: { stack: { type: "string", default: "dev" }, command: { type: "string", default: "up" } } }));
    } catch (error) {
        process.stderr.write(`preflight: ${(error as Error).message}\nusage: preflight.ts --stack <name> [--command up|preview|destroy]\n`);
        return 2;
    }
    const command = values.command as Command;
    if (!COMMANDS.includes(command)) {
        process.stderr.write(`preflight: --command must be one of ${COMMANDS.join(", ")}\n`);
        return 2;
    }
    if (process.env.KUBEADM_HA_SKIP_PREFLIGHT === "1") {
        process.stderr.write("preflight: skipped (KUBEADM_HA_SKIP_PREFLIGHT=1)\n");
        return 0;
    }
    const report = await preflight({ command, stack: values.stack!, env: process.env, home: homedir() });
    const { stdout, stderr } = formatReport(report, command);
    process.stdout.write(stdout);
    process.stderr.write(stderr);
    return report.problems.length === 0 ? 0 : 1;
}

if (require.main === module) {
    main().then((code) => {
        process.exitCode = code;
    });
}
