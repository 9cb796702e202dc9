/**
 * `npm run lab` where the lab cannot run: one line that says why, and a non-zero exit, before it
 * makes anything (here: as an unprivileged user, through util-linux's setpriv).
 */
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { requireTool } from "./tools";

it("refuses to run without root, in one line naming what it needs", () => {
    requireTool("setpriv", "util-linux");
    const root = join(__dirname, "..");
    const result = spawnSync(
        "setpriv",
        [
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "env",
            "HOME=/tmp",
            process.execPath,
            join(root, "node_modules/.bin/sucrase-node"),
            join(root, "lab/run.ts"),
        ],
        { encoding: "utf8", cwd: root },
    );
    expect(result.status).toBe(1);
    expect(result.stdout).toBe("");
    expect(result.stderr).toBe("npm run lab: the lab needs root (it makes network, PID and mount namespaces)\n");
});
