/**
 * Renders what runs on the nodes: the user data that prepares a node, and the remote-command lines
 * that carry each bootstrap step's script. The scripts live in scripts/ as plain bash, reviewed and
 * shellchecked as rendered here; parameters are prepended as quoted assignments, never interpolated
 * into the script text. Nothing secret is a parameter: secrets travel on the step's stdin.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { KubernetesVersion } from "./config";
import { BACKUP_SERVICE, BACKUP_TIMER, backupEnvironment, BackupTarget, renderEnvironmentFile } from "./backup";
import { ETCD_RELEASE } from "./etcd";

const SCRIPTS_DIR = join(__dirname, "..", "scripts");

export type RemoteStep =
    | "wait-for-prepare"
    | "place-pki"
    | "cluster-init"
    | "kubeadm-control-plane"
    | "membership"
    | "etcd-member"
    | "etcd-health"
    | "api-reachable"
    | "etcd-backup-install";

/** The steps that change or check etcd membership get its rules (scripts/remote/members.sh). */
const USES_MEMBERSHIP_RULES: ReadonlySet<RemoteStep> = new Set<RemoteStep>(["kubeadm-control-plane", "membership", "etcd-member", "etcd-health"]);

function read(relativePath: string): string {
    return readFileSync(join(SCRIPTS_DIR, relativePath), "utf8");
}

/** Drops a leading shebang so script bodies can be concatenated. */
function body(text: string): string {
    return text.replace(/^#!.*\n/, "");
}

/** POSIX single-quoting: safe for any string. */
export function shellQuote(value: string): string {
    return `'${value.replace(/'/g, `'\\''`)}'`;
}

function assignments(params: Record<string, string>): string {
    return Object.keys(params)
        .sort()
        .map((name) => {
            if (!/^[A-Z][A-Z0-9_]*$/.test(name)) throw new Error(`bad script parameter name ${name}`);
            return `${name}=${shellQuote(params[name])}\n`;
        })
        .join("");
}

/** EC2 user data: a preparation script with its parameters. Holds no secret: user data is readable through the API. */
function userData(what: string, params: Record<string, string>, script: string): string {
    return `#!/usr/bin/env bash\n# kubeadm-ha ${what} preparation. Holds no secret: EC2 user data is readable through the API.\n${assignments(params)}${body(read(script))}`;
}

/** Control-plane node preparation, with the Kubernetes version as its only parameters. */
export function renderUserData(version: KubernetesVersion): string {
    return userData("node", { KUBERNETES_MINOR: version.minor, KUBERNETES_PATCH: version.patch ?? "" }, "prepare-node.sh");
}

/** External etcd member preparation: the pinned, checksum-verified etcd release. */
export function renderEtcdUserData(): string {
    return userData(
        "etcd member",
        { ETCD_VERSION: ETCD_RELEASE.version, ETCD_SHA256_AMD64: ETCD_RELEASE.sha256.amd64, ETCD_SHA256_ARM64: ETCD_RELEASE.sha256.arm64 },
        "prepare-etcd-node.sh",
    );
}

/** The complete bash script of one remote step: strict mode, parameters, shared helpers, the step. */
export function renderStepScript(step: RemoteStep, params: Record<string, string> = {}): string {
    return (
        "#!/usr/bin/env bash\n" +
        `# kubeadm-ha remote step: ${step}\n` +
        "set -euo pipefail\n" +
        assignments(params) +
        read("remote/common.sh") +
        (USES_MEMBERSHIP_RULES.has(step) ? read("remote/members.sh") : "") +
        body(read(`remote/${step}.sh`))
    );
}

/** The etcd backup program installed on the nodes (scripts/etcd-backup.sh). */
export function renderEtcdBackupProgram(): string {
    return read("etcd-backup.sh");
}

/** The remote step that installs hourly etcd backups for one member and takes the first snapshot. */
export function renderEtcdBackupInstall(target: BackupTarget, retention: number): string {
    return renderRemoteCommand("etcd-backup-install", {
        BACKUP_PROGRAM: renderEtcdBackupProgram(),
        BACKUP_ENV: renderEnvironmentFile(backupEnvironment(target, retention)),
        BACKUP_SERVICE,
        BACKUP_TIMER,
    });
}

/** Undoes the backup install when backups are turned off; the snapshots taken so far stay. */
export const ETCD_BACKUP_REMOVE = "sudo systemctl disable --now kubeadm-ha-etcd-backup.timer || true\n";

const HEREDOC_END = "KUBEADM_HA_STEP_EOF";

/**
 * The command line a remote.Command runs over SSH: write the step's script to a temporary file and
 * run it as root, with the command's stdin (the secrets) passed through to it. The script is visible
 * in `pulumi preview`, so what a reviewer reads is exactly what runs.
 */
export function renderRemoteCommand(step: RemoteStep, params: Record<string, string> = {}): string {
    const script = renderStepScript(step, params);
    if (script.includes(HEREDOC_END)) throw new Error(`script ${step} contains the heredoc terminator`);
    return [
        "set -eu",
        "step_script=$(mktemp)",
        `trap 'rm -f "$step_script"' EXIT`,
        `cat >"$step_script" <<'${HEREDOC_END}'`,
        script + HEREDOC_END,
        `sudo bash "$step_script"`,
        "",
    ].join("\n");
}
