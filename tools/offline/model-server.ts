/**
 * The hosts' model as one process per test process (hosts/model-server.cjs): a tool call on a
 * simulated host then costs a local connection, not a Node.js start. Started on first use and shared
 * by every simulation of the process; it exits when this process does (its stdin closes).
 */
import { ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";

let started: Promise<number> | undefined;

/** The port of this process's model server, which model-call reaches through SIM_MODEL_PORT. */
export function modelServerPort(): Promise<number> {
    started ??= new Promise<number>((resolve, reject) => {
        const child: ChildProcess = spawn(process.execPath, [join(__dirname, "hosts", "model-server.cjs")], { stdio: ["pipe", "pipe", "inherit"] });
        let line = "";
        const onData = (chunk: Buffer) => {
            line += chunk.toString("utf8");
            if (!line.includes("\n")) return;
            child.stdout!.off("data", onData);
            resolve(Number(line.split("\n")[0]));
        };
        child.stdout!.on("data", onData);
        child.on("error", reject);
        child.on("exit", (code) => {
            started = undefined;
            reject(new Error(`the model's server exited (${code}) before it listened`));
        });
        // Neither the child nor its pipes keep this process alive; when it ends, the child's stdin closes.
        child.unref();
        (child.stdin as unknown as { unref(): void }).unref();
        (child.stdout as unknown as { unref(): void }).unref();
    });
    return started;
}
