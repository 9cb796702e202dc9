/** The systemd units the program installs, checked by systemd's own `systemd-analyze verify`. */
import { spawnSync } from "node:child_process";
import { BACKUP_SERVICE, BACKUP_TIMER } from "../core/backup";
import { etcdFlags, renderEtcdUnit } from "../core/etcd";
import { requireTool, tempDir, writeTemp } from "./tools";

/** systemd-analyze's findings, less the complaint that a unit's program is not on this machine. */
function verify(files: Record<string, string>): string[] {
    requireTool("systemd-analyze", "systemd");
    const dir = tempDir("units");
    const paths = Object.entries(files).map(([name, content]) => writeTemp(dir, name, content));
    const result = spawnSync("systemd-analyze", ["verify", "--man=no", ...paths], { encoding: "utf8" });
    return (result.stdout + result.stderr)
        .split("\n")
        .filter((line) => line.trim() !== "" && !/Command \/usr\/local\/s?bin\/\S+ is not executable: No such file or directory/.test(line));
}

describe("systemd units", () => {
    it("the etcd member unit and the backup service and timer verify cleanly", () => {
        expect(
            verify({
                "etcd.service": renderEtcdUnit(etcdFlags({ name: "kubeadm-ha-etcd-0", ip: "10.0.0.110" }, "kubeadm-ha-etcd")),
                "kubeadm-ha-etcd-backup.service": BACKUP_SERVICE,
                "kubeadm-ha-etcd-backup.timer": BACKUP_TIMER,
            }),
        ).toEqual([]);
    });

    it("a misspelt setting is reported, so a clean result means something", () => {
        expect(verify({ "bad.timer": BACKUP_TIMER.replace("OnCalendar=", "OnCalendr=") }).join("\n")).toMatch(/Unknown key 'OnCalendr'/);
    });
});
