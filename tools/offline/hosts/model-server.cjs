#!/usr/bin/env node
// The hosts' model (model.cjs) as one long-lived process, so a tool call on a simulated host costs a
// connection instead of a Node.js start (about 100 ms, most of a lifecycle test's time). model.cjs is
// compiled once, as Node compiles any CommonJS file, and each call runs it afresh with a `process` of
// its own: the call's argv, environment, standard input and output, and an exit that ends the call,
// not the server. Calls come from model-call (the tools' shims) over TCP on 127.0.0.1, one at a time,
// in the order they arrive; each reads and writes the world file itself, as a process of its own
// would. Prints its port on the first line of stdout and exits when its stdin closes, so it never
// outlives the test process that started it.
//
// Request: NUL-terminated fields: tool, working directory, SIM_WORLD, SIM_HOST, SIM_STEP,
// KUBEADM_HA_ROOT, SIM_ETCD_RELEASE, standard input, the number of arguments, the arguments.
// Response: NUL-terminated exit code, stdout, stderr.
"use strict";
/* eslint-disable @typescript-eslint/no-require-imports -- a plain CommonJS script, run by node directly */
const fs = require("node:fs");
const net = require("node:net");
const path = require("node:path");
const vm = require("node:vm");
const { createRequire } = require("node:module");

const MODEL = path.join(__dirname, "model.cjs");
// The shebang line is no JavaScript; keep the line numbers of stack traces.
const source = fs.readFileSync(MODEL, "utf8").replace(/^#!.*/, "");
const model = vm.compileFunction(source, ["require", "module", "exports", "__filename", "__dirname", "process"], { filename: MODEL });
const modelRequire = createRequire(MODEL);
const ENV_FIELDS = ["SIM_WORLD", "SIM_HOST", "SIM_STEP", "KUBEADM_HA_ROOT", "SIM_ETCD_RELEASE"];
const FIXED_FIELDS = 2 + ENV_FIELDS.length + 2;

class Exit {
    constructor(code) {
        this.code = code;
    }
}

/** One call of the model: what a process of it would have exited with and printed. */
function call(fields) {
    const [tool, cwd, ...rest] = fields;
    const env = { ...process.env, SIM_TOOL: tool };
    ENV_FIELDS.forEach((name, i) => {
        if (rest[i] !== "") env[name] = rest[i];
        else delete env[name];
    });
    const stdinText = rest[ENV_FIELDS.length];
    const args = fields.slice(FIXED_FIELDS);
    const out = [];
    const err = [];
    const callProcess = {
        argv: [process.execPath, path.join(__dirname, tool), ...args],
        env,
        stdinText,
        stdout: { write: (text) => out.push(String(text)) },
        stderr: { write: (text) => err.push(String(text)) },
        exit: (code = 0) => {
            throw new Exit(code);
        },
    };
    let code = 0;
    try {
        process.chdir(cwd);
        const module = { exports: {} };
        model(modelRequire, module, module.exports, MODEL, __dirname, callProcess);
    } catch (e) {
        if (e instanceof Exit) code = e.code;
        else {
            // As node reports an uncaught exception: its stack on stderr, exit code 1.
            err.push(`${e && e.stack ? e.stack : e}\n`);
            code = 1;
        }
    }
    return `${code}\0${out.join("")}\0${err.join("")}\0`;
}

const server = net.createServer((socket) => {
    let buffer = Buffer.alloc(0);
    socket.on("data", (chunk) => {
        buffer = Buffer.concat([buffer, chunk]);
        const fields = buffer.toString("utf8").split("\0");
        // Complete once the argument count and that many arguments have arrived (each NUL-terminated).
        if (fields.length <= FIXED_FIELDS) return;
        const count = Number(fields[FIXED_FIELDS - 1]);
        if (fields.length <= FIXED_FIELDS + count) return;
        socket.end(call(fields.slice(0, FIXED_FIELDS + count)));
    });
    socket.on("error", () => socket.destroy());
});
server.listen(0, "127.0.0.1", () => {
    process.stdout.write(`${server.address().port}\n`);
});
process.stdin.on("end", () => process.exit(0));
process.stdin.on("close", () => process.exit(0));
process.stdin.resume();
