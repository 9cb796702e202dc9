/**
 * Renders what runs on the nodes: the user data that prepares a node, and the remote-command lines
 * that carry each bootstrap step's script. The scripts live in scripts/ as plain bash, reviewed and
 * shellchecked as rendered here; parameters are prepended as quoted assignments, never interpolated
 * into the script text. Nothing secret is a parameter: secrets travel on the step's stdin.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { KubernetesVersion } from "./config";
import {
    BACKUP_SERVICE,
    BACKUP_TIMER,
    backupEnvironment,
    BackupTarget,
    ETCD_SNAPSHOT_NOW_COMMAND,
    OffsiteMember,
    renderEnvironmentFile,
    SNAPSHOT_NOW_SERVICE,
    UPLOAD_SERVICE,
    uploadTimer,
} from "./backup";
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
    | "etcd-backup-install"
    | "etcd-restore"
    | "cert-renewal-install";

/** The steps that change or check etcd membership get its rules (scripts/remote/members.sh). */
const USES_MEMBERSHIP_RULES: ReadonlySet<RemoteStep> = new Set<RemoteStep>(["kubeadm-control-plane", "membership", "etcd-member", "etcd-health"]);

/** The steps that add an etcd member, after a snapshot through a live one (scripts/remote/snapshot.sh). */
const USES_PEER_SNAPSHOT: ReadonlySet<RemoteStep> = new Set<RemoteStep>(["kubeadm-control-plane", "etcd-member"]);

/** The steps that read, renew or report the certificates kubeadm issues on a node (scripts/remote/certificates.sh). */
const USES_CERTIFICATE_FUNCTIONS: ReadonlySet<RemoteStep> = new Set<RemoteStep>(["kubeadm-control-plane"]);

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
function userData(what: string, params: Record<string, string>, ...scripts: string[]): string {
    return `#!/usr/bin/env bash\n# kubeadm-ha ${what} preparation. Holds no secret: EC2 user data is readable through the API.\n${assignments(params)}${scripts.map((s) => body(read(s))).join("")}`;
}

/** Control-plane node preparation, with the Kubernetes version as its only parameters. */
export function renderUserData(version: KubernetesVersion): string {
    return userData(
        "node",
        { KUBERNETES_MINOR: version.minor, KUBERNETES_PATCH: version.patch ?? "" },
        "node-functions.sh",
        "containerd-pause.sh",
        "prepare-node.sh",
    );
}

/** External etcd member preparation: the pinned, checksum-verified etcd release. */
export function renderEtcdUserData(): string {
    return userData(
        "etcd member",
        { ETCD_VERSION: ETCD_RELEASE.version, ETCD_SHA256_AMD64: ETCD_RELEASE.sha256.amd64, ETCD_SHA256_ARM64: ETCD_RELEASE.sha256.arm64 },
        "node-functions.sh",
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
        body(read("node-functions.sh")) +
        (USES_MEMBERSHIP_RULES.has(step) ? read("remote/members.sh") : "") +
        (USES_CERTIFICATE_FUNCTIONS.has(step) ? read("remote/certificates.sh") : "") +
        // The member step converges a member to the cluster's release and configuration.
        (step === "kubeadm-control-plane" ? body(read("containerd-pause.sh")) + read("remote/upgrade.sh") : "") +
        (USES_PEER_SNAPSHOT.has(step) ? read("remote/snapshot.sh") : "") +
        body(read(`remote/${step}.sh`))
    );
}

/** The etcd backup program installed on the nodes (scripts/etcd-backup.sh). */
export function renderEtcdBackupProgram(): string {
    return `#!/usr/bin/env bash\n${body(read("node-functions.sh"))}${body(read("etcd-backup.sh"))}`;
}

/**
 * The remote step that installs etcd backups for one member: hourly local snapshots and, with
 * `offsite`, the upload timer on which the etcd leader uploads to S3 every interval. It takes the
 * first snapshot, and uploads one, before it succeeds.
 */
export function renderEtcdBackupInstall(target: BackupTarget, retention: number, offsite?: OffsiteMember): string {
    return renderRemoteCommand("etcd-backup-install", {
        BACKUP_PROGRAM: renderEtcdBackupProgram(),
        BACKUP_ENV: renderEnvironmentFile(backupEnvironment(target, retention, undefined, offsite)),
        BACKUP_SERVICE,
        BACKUP_TIMER,
        UPLOAD_SERVICE: offsite ? UPLOAD_SERVICE : "",
        UPLOAD_TIMER: offsite ? uploadTimer(offsite.interval) : "",
        SNAPSHOT_NOW_SERVICE: offsite ? SNAPSHOT_NOW_SERVICE : "",
    });
}

/**
 * The parameters of a snapshot taken through a live member before a new one is added (a join, a
 * replacement): the backup program, its settings for `access` (binary: this node's etcdctl, fetched
 * when it has none) without the member's address, which the step finds, and the snapshot-now unit.
 * Empty with backups off.
 */
export function peerSnapshotParams(access: Omit<BackupTarget, "mode" | "endpoint">, retention: number, offsite: OffsiteMember): Record<string, string> {
    if (retention === 0) return { BACKUP_PROGRAM: "", PEER_BACKUP_ENV: "", SNAPSHOT_NOW_SERVICE: "" };
    const env = backupEnvironment({ ...access, mode: "binary", endpoint: "" }, retention, undefined, offsite);
    delete env.ETCD_ENDPOINT;
    return {
        BACKUP_PROGRAM: renderEtcdBackupProgram(),
        PEER_BACKUP_ENV: renderEnvironmentFile({
            ...env,
            ETCD_VERSION: ETCD_RELEASE.version,
            ETCD_SHA256_AMD64: ETCD_RELEASE.sha256.amd64,
            ETCD_SHA256_ARM64: ETCD_RELEASE.sha256.arm64,
        }),
        SNAPSHOT_NOW_SERVICE,
    };
}

/** Undoes the backup install when backups are turned off; the snapshots taken so far stay. */
export const ETCD_BACKUP_REMOVE =
    "sudo systemctl disable --now kubeadm-ha-etcd-backup.timer || true\nsudo systemctl disable --now kubeadm-ha-etcd-upload.timer 2>/dev/null || true\n";

/**
 * "Snapshot now", for a step before a risky change: on a node with backups installed, one snapshot of
 * its member is uploaded to S3; the command fails (and so the step) when it cannot be.
 */
export const ETCD_SNAPSHOT_NOW = `set -eu\nsudo ${ETCD_SNAPSHOT_NOW_COMMAND}\n`;

/**
 * The remote step that restores one member's etcd data from a snapshot in S3 before etcd first
 * starts (parameters from etcdRestoreParams). It runs the backup program's restore mode.
 */
export function renderEtcdRestore(params: Record<string, string>): string {
    return renderRemoteCommand("etcd-restore", { ...params, BACKUP_PROGRAM: renderEtcdBackupProgram() });
}

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
