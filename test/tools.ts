/**
 * Runs the real tools that consume what the program renders. A missing tool fails the test with the
 * package to install: a skipped check would pass silently.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export function requireTool(tool: string, debianPackage: string): void {
    const found = spawnSync("sh", ["-c", `command -v ${tool}`], { encoding: "utf8" });
    if (found.status !== 0) {
        throw new Error(`${tool} is not installed: apt-get install ${debianPackage} (the CI script does)`);
    }
}

export function tempDir(prefix: string): string {
    return mkdtempSync(join(tmpdir(), `kubeadm-ha-${prefix}-`));
}

export function writeTemp(dir: string, name: string, content: string): string {
    const path = join(dir, name);
    writeFileSync(path, content);
    return path;
}

/** shellcheck's findings for a bash script, or "" when clean. */
export function shellcheck(script: string): string {
    requireTool("shellcheck", "shellcheck");
    const result = spawnSync("shellcheck", ["--shell=bash", "--severity=style", "-"], { input: script, encoding: "utf8" });
    return result.status === 0 ? "" : result.stdout + result.stderr;
}

export function openssl(args: string[], input?: string): string {
    requireTool("openssl", "openssl");
    return execFileSync("openssl", args, { input, encoding: "utf8", stdio: ["pipe", "pipe", "pipe"] });
}
