/**
 * What every step must leave true on every lab host, checked on the host's real file system: the
 * system directories keep their modes and owners (a step that makes /run 0700 breaks name resolution
 * for every user but root), no file that others can read holds a secret (a PEM private key, a
 * kubeconfig's client key, a bootstrap token), and kubeadm-ha's logs are root's alone.
 */
import { Lab } from "./hosts";

/** The system directories whose mode and owner no step may change (those the host has). */
export const SYSTEM_DIRECTORIES = [
    "/",
    "/etc",
    "/etc/apt",
    "/etc/ssh",
    "/etc/systemd",
    "/etc/systemd/system",
    "/etc/containerd",
    "/root",
    "/run",
    "/tmp",
    "/usr",
    "/usr/local",
    "/usr/local/bin",
    "/usr/local/sbin",
    "/var",
    "/var/cache",
    "/var/lib",
    "/var/log",
    "/var/tmp",
];

/** Where the steps write: searched for secrets that others can read. */
const WRITTEN = [
    "/etc/kubernetes",
    "/etc/kubeadm-ha",
    "/etc/etcd",
    "/etc/systemd/system",
    "/usr/local/sbin",
    "/var/lib/kubeadm-ha",
    "/var/lib/kubelet",
    "/var/lib/etcd",
    "/var/log",
    "/run",
    "/tmp",
    // Not /root as a whole: the machine's own /root (its Go and npm caches) is the layer beneath.
    "/root/.kube",
];

const SECRET = 'PRIVATE KEY-----|client-key-data:|token: *"?[a-z0-9]{6}\\.[a-z0-9]{16}';

/** One pass over the host: "dir <mode> <owner> <path>", "secret <file>" and "log <mode> <path>" lines. */
const CHECK = [
    `for d in ${SYSTEM_DIRECTORIES.join(" ")}; do [ ! -e "$d" ] || stat -c 'dir %a %U:%G %n' "$d"; done`,
    `for d in ${WRITTEN.join(" ")}; do [ ! -d "$d" ] || find "$d" -xdev -type f -perm /o+r -size -1M -print0 2>/dev/null; done | xargs -0r grep -lE '${SECRET}' 2>/dev/null | sed 's/^/secret /'`,
    "[ ! -d /var/log/kubeadm-ha ] || find /var/log/kubeadm-ha -perm /g+r,o+r,o+x -printf 'log %m %p\\n'",
    "true",
].join("\n");

function check(lab: Lab, host: string): string[] {
    const result = lab.run(host, CHECK);
    if (result.status !== 0) throw new Error(`checking ${host} failed: ${result.stderr}`);
    return result.stdout.split("\n").filter(Boolean);
}

/** Each system directory's mode and owner, as the host has them now. */
export function systemDirectoryModes(lab: Lab, host: string): string[] {
    return check(lab, host).filter((line) => line.startsWith("dir "));
}

/** What is wrong on the host now, against its directories' modes before its first step. */
export function invariantViolations(lab: Lab, host: string, modesBefore: string[]): string[] {
    const before = new Set(modesBefore);
    return check(lab, host).flatMap((line) => {
        const [kind, rest] = [line.slice(0, line.indexOf(" ")), line.slice(line.indexOf(" ") + 1)];
        if (kind === "dir") return before.has(line) ? [] : [`system directory changed: ${rest}`];
        if (kind === "secret") return [`a secret that others can read: ${rest}`];
        return [`kubeadm-ha's log readable by others: ${rest}`];
    });
}
