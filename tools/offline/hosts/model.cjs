#!/usr/bin/env node
// The cluster the lifecycle simulation's hosts share: a stand-in for kubeadm, kubectl (with etcdctl
// inside etcd pods), curl, and the few system tools the remote steps call. Each call is one process
// that reads the world from $SIM_WORLD (JSON), acts as the real tool would on the calling host
// ($SIM_HOST, whose file tree is $KUBEADM_HA_ROOT), records what it did, and writes the world back.
// Steps run one at a time, so no locking is needed. It refuses what the real parts refuse: a join
// while a listed etcd member is down, a join without its bootstrap token, an etcd change without
// quorum; and it records every init, join, reset and member removal for the tests to judge.
"use strict";
/* eslint-disable @typescript-eslint/no-require-imports -- a plain CommonJS script: each call must start fast, with no compile step */
const fs = require("node:fs");
const path = require("node:path");

const tool = path.basename(process.argv[1]);
const args = process.argv.slice(2);
const worldFile = process.env.SIM_WORLD;
const world = JSON.parse(fs.readFileSync(worldFile, "utf8"));
const hostId = process.env.SIM_HOST;
const host = world.hosts[hostId];
const root = process.env.KUBEADM_HA_ROOT;

function save() {
    fs.writeFileSync(worldFile, JSON.stringify(world, null, 1));
}
function event(what, detail = {}) {
    world.events.push({ step: process.env.SIM_STEP, host: hostId, what, ...detail });
}
function exit(code, out = "", err = "") {
    save();
    if (out) process.stdout.write(out);
    if (err) process.stderr.write(err);
    process.exit(code);
}
function writeFile(rel, content) {
    const full = path.join(root, rel);
    fs.mkdirSync(path.dirname(full), { recursive: true });
    fs.writeFileSync(full, content);
}
function option(name) {
    const i = args.findIndex((a) => a === name || a.startsWith(`${name}=`));
    if (i < 0) return undefined;
    return args[i].includes("=") ? args[i].slice(name.length + 1) : args[i + 1];
}
const hostByIp = (ip) => Object.values(world.hosts).find((h) => h.ip === ip);
const hostByName = (name) => Object.values(world.hosts).find((h) => h.name === name);
const apiUp = (h) => h && h.alive && h.api;
const memberUp = (m) => hostByName(m.name)?.alive === true && hostByName(m.name)?.member === true;
const cluster = world.cluster;

/** The files kubeadm leaves on a control-plane node, and the kube-proxy pod that starts there. */
function becomeMember(h) {
    writeFile("etc/kubernetes/kubelet.conf", "kubelet\n");
    writeFile("etc/kubernetes/admin.conf", "admin\n");
    writeFile("etc/kubernetes/manifests/kube-apiserver.yaml", "apiserver\n");
    h.api = true;
    h.member = true;
    if (!cluster.nodes.includes(h.name)) cluster.nodes.push(h.name);
    startKubeProxy(h);
}
/** The kubelet copies the node's /etc/hosts into a host-network pod when it starts it. */
function startKubeProxy(h) {
    const hosts = fs.existsSync(path.join(h.root, "etc/hosts")) ? fs.readFileSync(path.join(h.root, "etc/hosts"), "utf8") : "";
    fs.mkdirSync(path.join(h.root, "var/lib/kubelet/pods/kube-proxy"), { recursive: true });
    fs.writeFileSync(path.join(h.root, "var/lib/kubelet/pods/kube-proxy/etc-hosts"), hosts);
}
function hasQuorum() {
    const voters = cluster.members.filter((m) => !m.learner);
    return voters.filter(memberUp).length * 2 > voters.length;
}

function kubeadm() {
    const [command, sub] = args;
    if (command === "init") {
        event("init");
        if (cluster.members.length > 0) event("second-init");
        cluster.inits += 1;
        cluster.members = [{ id: nextId(), name: host.name, learner: false }];
        cluster.nodes = [];
        cluster.tokens = [tokenOf(option("--config"))];
        becomeMember(host);
        return exit(0);
    }
    if (command === "join") {
        const token = tokenOf(option("--config"));
        if (!cluster.tokens.includes(token)) return exit(1, "", "couldn't validate the identity of the API Server: token not found\n");
        const down = cluster.members.filter((m) => !memberUp(m));
        if (down.length > 0) return exit(1, "", `error execution phase check-etcd: etcd cluster is not healthy: ${down.map((m) => m.name).join(",")} down\n`);
        if (cluster.members.some((m) => m.learner)) return exit(1, "", "etcdserver: too many learner members in cluster\n");
        event("join");
        cluster.members.push({ id: nextId(), name: host.name, learner: false });
        becomeMember(host);
        return exit(0);
    }
    if (command === "reset") {
        event("reset", { wasMember: host.member === true });
        // kubeadm removes this node's member when it can, and wipes the data either way.
        if (hasQuorum()) cluster.members = cluster.members.filter((m) => m.name !== host.name);
        for (const dir of ["etc/kubernetes/kubelet.conf", "etc/kubernetes/admin.conf", "etc/kubernetes/manifests", "var/lib/etcd"]) {
            fs.rmSync(path.join(root, dir), { recursive: true, force: true });
        }
        host.api = false;
        host.member = false;
        return exit(0);
    }
    if (command === "token" && sub === "list") return exit(0, cluster.tokens.map((t) => `${t.split(".")[0]}.<redacted> 1h\n`).join(""));
    if (command === "token" && sub === "create") {
        cluster.tokens.push(args[2]);
        return exit(0);
    }
    if (command === "kubeconfig" && sub === "user") return exit(0, "apiVersion: v1\nclusters:\n- cluster:\n    server: https://placeholder:6443\n");
    return exit(2, "", `kubeadm stand-in: unsupported ${args.join(" ")}\n`);
}
function tokenOf(file) {
    const text = fs.readFileSync(file, "utf8");
    return /token: "?([a-z0-9]{6}\.[a-z0-9]{16})/.exec(text)?.[1];
}
function nextId() {
    cluster.nextId += 1;
    return (0x8e9e05c52164694dn + BigInt(cluster.nextId)).toString(16);
}

/** The API server kubectl talks to: --server, else the kubeconfig's (always a live one here). */
function apiReachable() {
    const server = option("--server");
    const ip = server && /https:\/\/([^:]+):/.exec(server)?.[1];
    if (ip === "127.0.0.1") return apiUp(host);
    return Object.values(world.hosts).some(apiUp);
}

function kubectl() {
    if (!apiReachable()) return exit(1, "", "The connection to the server was refused\n");
    const positional = [];
    for (let i = 0; i < args.length; i++) {
        if (args[i] === "--") {
            positional.push(...args.slice(i));
            break;
        }
        if (/^--?[a-z-]+$/.test(args[i]) && !["--wait=false", "--ignore-not-found"].includes(args[i]) && args[i + 1] !== undefined) i++;
        else if (!args[i].startsWith("-")) positional.push(args[i]);
    }
    const [verb, kind, name] = positional;
    if (verb === "get" && kind === "pods") return exit(0, cluster.members.map((m) => `pod/etcd-${m.name}\n`).join(""));
    if (verb === "get" && kind === "nodes") return exit(0, cluster.nodes.map((n) => `node/${n}\n`).join(""));
    if (verb === "delete" && kind === "node") {
        cluster.nodes = cluster.nodes.filter((n) => n !== name);
        event("delete-node", { node: name });
        return exit(0);
    }
    if (verb === "delete" && kind === "pod") {
        const node = /spec\.nodeName=(\S+)/.exec(option("--field-selector") ?? "")?.[1];
        const target = hostByName(node);
        if (target) startKubeProxy(target);
        event("restart-kube-proxy", { node });
        return exit(0);
    }
    if (verb === "exec") {
        const pod = kind;
        const on = hostByName(pod.replace(/^etcd-/, ""));
        if (!on || !on.alive || !on.member) return exit(1, "", `error: unable to upgrade connection: pod ${pod} unreachable\n`);
        return etcdctl(positional.slice(positional.indexOf("--") + 2));
    }
    return exit(2, "", `kubectl stand-in: unsupported ${args.join(" ")}\n`);
}

function etcdctl(words) {
    const command = [];
    for (let i = 0; i < words.length; i++) {
        if (["--cacert", "--cert", "--key", "--endpoints", "-w"].includes(words[i])) i++;
        else if (!words[i].startsWith("-")) command.push(words[i]);
    }
    if (!hasQuorum() && command[0] !== "endpoint") return exit(1, "", "context deadline exceeded\n");
    const url = (m) => `https://${hostByName(m.name)?.ip ?? "0.0.0.0"}:2379`;
    if (command[0] === "member" && command[1] === "list") {
        return exit(0, cluster.members.map((m) => `${m.id}, started, ${m.name}, ${url(m).replace("2379", "2380")}, ${url(m)}, ${m.learner}\n`).join(""));
    }
    if (command[0] === "endpoint" && command[1] === "health") {
        const lines = cluster.members.map(
            (m) => `${url(m)} is ${memberUp(m) ? "healthy: successfully committed proposal" : "unhealthy: failed to commit proposal"}\n`,
        );
        return exit(cluster.members.every(memberUp) ? 0 : 1, lines.join(""));
    }
    if (command[0] === "endpoint" && command[1] === "status") {
        const leader = cluster.leader ?? cluster.members[0]?.id;
        return exit(
            0,
            cluster.members
                .filter(memberUp)
                .map((m) => `${url(m)}, ${m.id}, 3.5.24, 20 MB, ${m.id === leader}, ${m.learner}, 2, 9, 9, \n`)
                .join(""),
        );
    }
    if (command[0] === "member" && command[1] === "remove") {
        const member = cluster.members.find((m) => m.id === command[2]);
        if (!member) return exit(1, "", "member not found\n");
        const rest = cluster.members.filter((m) => m !== member);
        const voters = rest.filter((m) => !m.learner);
        if (voters.filter(memberUp).length * 2 <= voters.length) return exit(1, "", "etcdserver: re-configuration failed due to not enough started members\n");
        cluster.members = rest;
        if (cluster.leader === member.id) cluster.leader = undefined;
        const h = hostByName(member.name);
        if (h) h.member = false;
        event("member-remove", { member: member.name });
        return exit(0);
    }
    if (command[0] === "move-leader") {
        cluster.leader = command[1];
        event("move-leader", { to: command[1] });
        return exit(0);
    }
    return exit(2, "", `etcdctl stand-in: unsupported ${words.join(" ")}\n`);
}

function curl() {
    const url = args.find((a) => a.startsWith("https://"));
    const resolve = option("--resolve");
    let target = /https:\/\/([^:/]+)/.exec(url)[1];
    if (resolve) target = resolve.split(":")[2];
    if (target === "127.0.0.1") return exit(apiUp(host) ? 0 : 7);
    const h = hostByIp(target);
    if (!h) {
        // The load balancer's name: it forwards to any healthy API server.
        return exit(Object.values(world.hosts).some(apiUp) ? 0 : 7);
    }
    if (!h.alive) return exit(28);
    return exit(h.api ? 0 : 7);
}

switch (tool) {
    case "kubeadm":
        kubeadm();
        break;
    case "kubectl":
        kubectl();
        break;
    case "curl":
        curl();
        break;
    default:
        exit(0);
}
