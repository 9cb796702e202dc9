#!/usr/bin/env node
// The cluster the lifecycle simulation's hosts share: a stand-in for kubeadm, kubectl (with etcdctl
// inside stacked etcd pods), etcdctl on external etcd members, curl, systemctl (the etcd unit), and
// the few system tools the remote steps call. Each call (a process of its own, or a run of this file
// by model-server.cjs, afresh for each call) reads the world from $SIM_WORLD (JSON), acts as the real tool would on the calling host ($SIM_HOST, whose file tree is
// $KUBEADM_HA_ROOT), records what it did, and writes the world back. Steps run one at a time, so no
// locking is needed. It refuses what the real parts refuse: a join while a listed etcd member is
// down, a join without its bootstrap token, an etcd change without quorum, a second learner; and it
// records every init, join, reset and member change for the tests to judge.
//
// Releases: each host has the Kubernetes packages it installed (host.packages, from its launch
// template's user data at boot, then apt-get from the pkgs.k8s.io repository its sources list names,
// world.releases listing what each minor's repository holds), the kubelet it runs (host.kubelet), and
// the release of its control-plane pods (host.controlPlane); the cluster runs cluster.version, which
// init sets and `kubeadm upgrade apply` moves, one minor at a time, never past kubeadm's own release.
//
// Two etcd clusters can exist: the stacked one (world.cluster.members, one member per control-plane
// node, reached through `kubectl exec etcd-<node> -- etcdctl`), and the external one (world.etcd, one
// member per etcd host, reached by etcdctl on an etcd host and run by the host's etcd unit).
"use strict";
/* eslint-disable @typescript-eslint/no-require-imports -- a plain CommonJS script: each call must start fast, with no compile step */
const fs = require("node:fs");
const path = require("node:path");

// The tool is the name the model was run as, or SIM_TOOL: an etcdutl stand-in of one release
// (lifecycle.ts's etcdutlStandIn, a release tarball's) and the sha256sum stand-in set it.
const tool = process.env.SIM_TOOL || path.basename(process.argv[1]);
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
function readHostFile(h, rel) {
    const full = path.join(h.root, rel);
    return fs.existsSync(full) ? fs.readFileSync(full, "utf8") : undefined;
}
function option(name, from = args) {
    // The last occurrence wins, as with the flag parsers of the real tools.
    let value;
    for (let i = 0; i < from.length; i++) {
        if (from[i] === name) value = from[++i];
        else if (from[i].startsWith(`${name}=`)) value = from[i].slice(name.length + 1);
    }
    return value;
}
const hostByIp = (ip) => Object.values(world.hosts).find((h) => h.ip === ip && h.alive) ?? Object.values(world.hosts).find((h) => h.ip === ip);
const hostByName = (name) => Object.values(world.hosts).find((h) => h.name === name);
const memberUp = (m) => hostByName(m.name)?.alive === true && hostByName(m.name)?.member === true;
const cluster = world.cluster;

// --- control plane -------------------------------------------------------------------------------

/**
 * An API server is ready when its host lives, kubeadm set it up, and it reaches etcd: stacked, its
 * own member; external, at least one of the endpoints its manifest names (--etcd-servers) is a member
 * of a cluster with quorum, as the real API server balances over that list and fails when none answers.
 */
function apiUp(h) {
    if (!h || !h.alive || !h.api) return false;
    // A manifest moved out of the kubelet's directory (a restart): the pod is stopped.
    if (readHostFile(h, "etc/kubernetes/manifests/kube-apiserver.yaml") === undefined) return false;
    const servers = apiServerEtcdServers(h);
    if (servers.length === 0 || servers.every((s) => /\/\/127\.0\.0\.1:/.test(s))) return true;
    return etcdHasQuorum() && servers.some((s) => etcdMemberUp(externalMemberByClientUrl(s)));
}
/** The etcd servers an API server was configured with: its static pod manifest, which the kubelet runs. */
function apiServerEtcdServers(h) {
    const manifest = readHostFile(h, "etc/kubernetes/manifests/kube-apiserver.yaml") ?? "";
    const flag = /--etcd-servers=(\S+)/.exec(manifest);
    return flag ? flag[1].split(",") : [];
}
/** kubeadm's static pod manifest of the API server, with the flags the model reads. */
function renderApiServerManifest(h, etcdServers) {
    return [
        "apiVersion: v1",
        "kind: Pod",
        "metadata:",
        "  name: kube-apiserver",
        "  namespace: kube-system",
        "spec:",
        "  containers:",
        "  - command:",
        "    - kube-apiserver",
        `    - --advertise-address=${h.ip}`,
        `    - --etcd-servers=${etcdServers.join(",")}`,
        "    name: kube-apiserver",
        "",
    ].join("\n");
}

/** The files kubeadm leaves on a control-plane node, and the kube-proxy pod that starts there. */
function becomeControlPlane(h, stacked) {
    writeFile("etc/kubernetes/kubelet.conf", "kubelet\n");
    writeFile("etc/kubernetes/admin.conf", "admin\n");
    writeFile("etc/kubernetes/manifests/kube-apiserver.yaml", renderApiServerManifest(h, etcdServersOf(cluster.configuration)));
    renderOtherManifests(h, cluster.configuration, stacked);
    h.api = true;
    h.controlPlane = cluster.version;
    h.certExpiry = aYearFromNow();
    // A stacked etcd member runs here too.
    h.member = stacked;
    if (!cluster.nodes.includes(h.name)) cluster.nodes.push(h.name);
    startKubeProxy(h);
}
/** The controller-manager, scheduler and (stacked) etcd manifests, with the flags the tests read. */
function renderOtherManifests(h, configuration, stacked) {
    const extra = (component) => (configuration?.[component]?.extraArgs ?? []).map((a) => `    - --${a.name}=${a.value}\n`).join("");
    writeFile("etc/kubernetes/manifests/kube-controller-manager.yaml", `kind: Pod\n# kube-controller-manager\n${extra("controllerManager")}`);
    writeFile("etc/kubernetes/manifests/kube-scheduler.yaml", `kind: Pod\n# kube-scheduler\n${extra("scheduler")}`);
    if (stacked) {
        const etcdArgs = (configuration?.etcd?.local?.extraArgs ?? []).map((a) => `    - --${a.name}=${a.value}\n`).join("");
        writeFile("etc/kubernetes/manifests/etcd.yaml", `kind: Pod\n# etcd\n${etcdArgs}`);
    }
}
function aYearFromNow() {
    return new Date(Date.now() + 365 * 86_400_000).toISOString().replace(/\.\d{3}Z$/, "Z");
}
/** "1.34.2" from "v1.34.2"; "stable-1.34" resolves to the newest release of that minor's repository. */
function resolveVersion(label) {
    const stable = /^stable-(\d+\.\d+)$/.exec(label);
    if (stable) return world.releases[stable[1]].at(-1);
    return label.replace(/^v/, "");
}
const minorNumber = (v) => Number(v.split(".")[1]);
function compareVersions(a, b) {
    const [x, y] = [a, b].map((v) => v.split(".").map(Number));
    for (let i = 0; i < 3; i++) if (x[i] !== y[i]) return x[i] - y[i];
    return 0;
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

/** The ClusterConfiguration among kubeadm documents (multi-document YAML), as a plain object. */
function clusterConfigurationIn(text) {
    // Loaded only here: most calls of the model never parse YAML.
    const yaml = require("yaml");
    return yaml
        .parseAllDocuments(text)
        .map((d) => d.toJS())
        .find((d) => d && d.kind === "ClusterConfiguration");
}
/** The API server's --etcd-servers: external endpoints, else the local stacked member. */
function etcdServersOf(configuration) {
    return configuration?.etcd?.external?.endpoints ?? ["https://127.0.0.1:2379"];
}
const isExternal = (configuration) => Boolean(configuration?.etcd?.external);

function kubeadm() {
    const [command, sub] = args;
    if (command === "init" && sub === "phase") return kubeadmInitPhase();
    if (command === "init") return kubeadmInit();
    if (command === "join") return kubeadmJoin();
    if (command === "reset") return kubeadmReset();
    if (command === "upgrade" && sub === "apply") return kubeadmUpgradeApply();
    if (command === "upgrade" && sub === "node") return kubeadmUpgradeNode();
    if (command === "certs" && sub === "check-expiration") return kubeadmCertsCheck();
    if (command === "certs" && sub === "renew") {
        host.certExpiry = aYearFromNow();
        event("certs-renew");
        return exit(0);
    }
    if (command === "token" && sub === "list") return kubeadmTokenList();
    if (command === "token" && sub === "create") return kubeadmTokenCreate(args[2], option("--ttl") ?? "24h");
    if (command === "token" && sub === "delete") return kubeadmTokenDelete(args[2]);
    if (command === "kubeconfig" && sub === "user") return exit(0, "apiVersion: v1\nclusters:\n- cluster:\n    server: https://placeholder:6443\n");
    if (command === "version" && args.includes("short")) return exit(0, `v${host.packages.kubeadm}\n`);
    if (command === "config" && sub === "images" && args[2] === "list") return kubeadmImagesList();
    return exit(2, "", `kubeadm stand-in: unsupported ${args.join(" ")}\n`);
}

/** The pause and etcd images each minor's kubeadm lists (keyed by the minor asked for). */
const KUBEADM_IMAGES = require("./kubeadm-images.json");

/** kubeadm config images list --kubernetes-version vX: the images of release X (only the pause image is read). */
function kubeadmImagesList() {
    const version = args[args.indexOf("--kubernetes-version") + 1]?.replace(/^v/, "");
    const minor = (version ?? "").split(".").slice(0, 2).join(".");
    const { etcd, pause } = KUBEADM_IMAGES[minor] ?? {};
    if (!etcd || !pause) return exit(1, "", `kubeadm stand-in: no images known for ${version}\n`);
    return exit(
        0,
        ["kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy"].map((c) => `registry.k8s.io/${c}:v${version}\n`).join("") +
            `registry.k8s.io/pause:${pause}\nregistry.k8s.io/etcd:${etcd}\n`,
    );
}

/**
 * kubeadm init: the InitConfiguration and ClusterConfiguration on --config. The ClusterConfiguration
 * is what the cluster keeps (the kubeadm-config ConfigMap) and what every later join reads.
 */
function kubeadmInit() {
    const configuration = clusterConfigurationIn(fs.readFileSync(option("--config"), "utf8"));
    if (isExternal(configuration)) {
        // Preflight (ExternalEtcdVersion) asks every endpoint for its version and fails on any that does not answer.
        const silent = etcdServersOf(configuration).filter((url) => !etcdMemberRunning(externalMemberByClientUrl(url)));
        if (silent.length > 0)
            return exit(1, "", `[preflight] [ERROR ExternalEtcdVersion]: ${silent.map((u) => `${u}/version: connection refused`).join(", ")}\n`);
    }
    event("init");
    if (cluster.members.length > 0 || cluster.inits > 0) event("second-init");
    cluster.inits += 1;
    // kubeadm resolves a label to a release and keeps that in the cluster's configuration.
    cluster.version = resolveVersion(configuration.kubernetesVersion);
    configuration.kubernetesVersion = `v${cluster.version}`;
    cluster.configuration = configuration;
    cluster.members = isExternal(configuration) ? [] : [{ id: nextId(), name: host.name, learner: false }];
    cluster.nodes = [];
    // InitConfiguration's bootstrapTokens: the token with its ttl.
    const ttl = /^\s*ttl: "?([0-9hms.]+)"?\s*$/m.exec(fs.readFileSync(option("--config"), "utf8"))?.[1] ?? "24h";
    cluster.tokens = [{ token: tokenOf(option("--config")), expires: inSeconds(durationSeconds(ttl)) }];
    becomeControlPlane(host, !isExternal(configuration));
    return exit(0);
}

/**
 * kubeadm join --control-plane: discovery through a bootstrap token, then the cluster's own
 * ClusterConfiguration (not the joining node's documents). Stacked: the check-etcd phase needs every
 * listed member up, and the new member is added as etcd admits it (one learner at a time).
 */
function kubeadmJoin() {
    const token = tokenOf(option("--config"));
    const live = liveTokens().find((t) => t.token === token);
    if (!live) return exit(1, "", "couldn't validate the identity of the API Server: token not found\n");
    // The kubelet's TLS bootstrap, with the same token, ends the join: after the etcd join, which waits
    // for the new member to be promoted, and up to kubeadm's TLSBootstrap timeout (5 min) itself.
    const tokenSecondsLeft = Math.floor((Date.parse(live.expires) - Date.now()) / 1000);
    if (tokenSecondsLeft < JOIN_TOKEN_SECONDS) {
        return exit(
            1,
            "",
            `error execution phase kubelet-wait-bootstrap: failed while waiting for TLS bootstrap: the kubelet's bootstrap token expired (Unauthorized)\n`,
        );
    }
    const stacked = !isExternal(cluster.configuration);
    if (stacked) {
        const down = cluster.members.filter((m) => !memberUp(m));
        if (down.length > 0) return exit(1, "", `error execution phase check-etcd: etcd cluster is not healthy: ${down.map((m) => m.name).join(",")} down\n`);
        if (cluster.members.some((m) => m.learner)) return exit(1, "", "etcdserver: too many learner members in cluster\n");
    }
    event("join", { tokenSecondsLeft });
    if (stacked) cluster.members.push({ id: nextId(), name: host.name, learner: false });
    becomeControlPlane(host, stacked);
    return exit(0);
}

/** kubeadm reset: removes this node's stacked member when it can and wipes the node either way; external etcd is never touched. */
function kubeadmReset() {
    event("reset", { wasMember: host.member === true || host.api === true });
    if (!isExternal(cluster.configuration) && hasQuorum()) cluster.members = cluster.members.filter((m) => m.name !== host.name);
    for (const dir of ["etc/kubernetes/kubelet.conf", "etc/kubernetes/admin.conf", "etc/kubernetes/manifests", "var/lib/etcd"]) {
        fs.rmSync(path.join(root, dir), { recursive: true, force: true });
    }
    host.api = false;
    host.member = false;
    return exit(0);
}

/**
 * kubeadm init phase: the phases a converging step may run on a live node. `control-plane apiserver`
 * rewrites this node's API server manifest from the ClusterConfiguration given (the kubelet restarts
 * the pod); `upload-config kubeadm` stores it as the cluster's (what later joins read). Neither is an
 * init: no event, no change of membership.
 */
function kubeadmInitPhase() {
    const [, , phase, what] = args;
    const configuration = clusterConfigurationIn(fs.readFileSync(option("--config"), "utf8"));
    if (!configuration) return exit(1, "", "no ClusterConfiguration in --config\n");
    if (phase === "certs" && what === "etcd-healthcheck-client") {
        // From the etcd CA placed beforehand; a join keeps a valid certificate it finds.
        writeFile("etc/kubernetes/pki/etcd/healthcheck-client.crt", "healthcheck-client\n");
        return exit(0);
    }
    if (configuration.kubernetesVersion !== `v${cluster.version}`) {
        // Not kubeadm's refusal, the model's: a phase that renders another release than the cluster runs.
        return exit(1, "", `model: ${phase} rendered for ${configuration.kubernetesVersion}, the cluster runs v${cluster.version}\n`);
    }
    if (phase === "control-plane" && (what === "apiserver" || what === "all")) {
        writeFile("etc/kubernetes/manifests/kube-apiserver.yaml", renderApiServerManifest(host, etcdServersOf(configuration)));
        if (what === "all") renderOtherManifests(host, configuration, false);
        event("apiserver-manifest", { etcdServers: etcdServersOf(configuration) });
        return exit(0);
    }
    if (phase === "etcd" && what === "local") {
        if (isExternal(configuration)) return exit(1, "", "etcd local: the configuration names external etcd\n");
        renderOtherManifests(host, configuration, true);
        event("etcd-manifest");
        return exit(0);
    }
    if (phase === "upload-config" && what === "kubeadm") {
        if (!Object.values(world.hosts).some(apiUp)) return exit(1, "", "error uploading the kubeadm ClusterConfiguration: the API server is unreachable\n");
        cluster.configuration = configuration;
        event("upload-config");
        return exit(0);
    }
    return exit(2, "", `kubeadm stand-in: unsupported ${args.join(" ")}\n`);
}

/**
 * kubeadm upgrade apply vX: refuses a release newer than the kubeadm that runs it, more than one minor
 * ahead of the cluster, or older than it; its preflight needs every control-plane node Ready (here:
 * its API server up). It moves the cluster's release, re-renders this node's control plane and renews
 * this node's certificates.
 */
function kubeadmUpgradeApply() {
    const target = args[2].replace(/^v/, "");
    if (!args.includes("--yes") && !args.includes("-y")) return exit(1, "", "upgrade apply asks for confirmation; the step has no terminal\n");
    if (compareVersions(target, host.packages.kubeadm) > 0)
        return exit(1, "", `Specified version to upgrade to "v${target}" is higher than the kubeadm version "v${host.packages.kubeadm}"\n`);
    if (compareVersions(target, cluster.version) < 0) return exit(1, "", `Specified version to upgrade to "v${target}" is lower than the cluster version\n`);
    if (minorNumber(target) - minorNumber(cluster.version) > 1)
        return exit(1, "", `Specified version to upgrade to "v${target}" is too high; kubeadm can upgrade only 1 minor version at a time\n`);
    const notReady = cluster.nodes.filter((n) => !apiUp(hostByName(n)));
    if (notReady.length > 0) return exit(1, "", `[ERROR ControlPlaneNodesReady]: there are NotReady control-planes in the cluster: ${notReady.join(",")}\n`);
    event("upgrade-apply", { from: cluster.version, to: target });
    cluster.version = target;
    cluster.configuration = { ...cluster.configuration, kubernetesVersion: `v${target}` };
    host.controlPlane = target;
    host.certExpiry = aYearFromNow();
    return exit(0);
}

/** kubeadm upgrade node: this node's control plane to the cluster's release, with kubeadm of that release or newer. */
function kubeadmUpgradeNode() {
    if (compareVersions(host.packages.kubeadm, cluster.version) < 0)
        return exit(1, "", `the kubeadm version v${host.packages.kubeadm} is older than the cluster's v${cluster.version}\n`);
    event("upgrade-node", { from: host.controlPlane, to: cluster.version });
    host.controlPlane = cluster.version;
    host.certExpiry = aYearFromNow();
    return exit(0);
}

/** kubeadm certs check-expiration -o json: output.kubeadm.k8s.io/v1alpha3 CertificateExpirationInfo. */
function kubeadmCertsCheck() {
    const names = ["admin.conf", "apiserver-kubelet-client", "controller-manager.conf", "front-proxy-client", "scheduler.conf"];
    const certificates = names.map((name) => ({ name, expirationDate: host.certExpiry, residualTime: 0, externallyManaged: false, missing: false }));
    certificates.push({ name: "super-admin.conf", expirationDate: null, residualTime: 0, externallyManaged: false, missing: true });
    return exit(
        0,
        JSON.stringify({ kind: "CertificateExpirationInfo", apiVersion: "output.kubeadm.k8s.io/v1alpha3", certificates, certificateAuthorities: [] }),
    );
}

/**
 * How long a join needs its bootstrap token (a model's bound, from kubeadm's own timeouts): discovery,
 * kubelet-start, the etcd join (which waits for the new member's promotion), then the kubelet's TLS
 * bootstrap with the token (TLSBootstrap, 5 min). A token with less left may expire mid-join.
 */
const JOIN_TOKEN_SECONDS = 10 * 60;
/** Tokens that have not expired: the controller-manager's token cleaner deletes the others. */
function liveTokens() {
    cluster.tokens = (cluster.tokens ?? []).filter((t) => Date.parse(t.expires) > Date.now());
    return cluster.tokens;
}
const inSeconds = (seconds) => new Date(Date.now() + seconds * 1000).toISOString();
/** A Go duration as kubeadm's --ttl and ttl: take it ("1h", "1h0m0s", "90m"). */
function durationSeconds(text) {
    const units = { h: 3600, m: 60, s: 1 };
    let seconds = 0;
    for (const [, n, unit] of text.matchAll(/(\d+(?:\.\d+)?)([hms])/g)) seconds += Number(n) * units[unit];
    return seconds;
}
/** kubeadm token create <token> --ttl: refuses a token whose id exists (CreateNewTokens); prints the token. */
function kubeadmTokenCreate(token, ttl) {
    if (!apiReachable()) return exit(1, "", "failed to create or update bootstrap token: the API server is unreachable\n");
    const id = token.split(".")[0];
    if (liveTokens().some((t) => t.token.split(".")[0] === id)) return exit(1, "", `a token with id "${id}" already exists\n`);
    const seconds = durationSeconds(ttl);
    cluster.tokens.push({ token, expires: inSeconds(seconds) });
    event("token-create", { ttlSeconds: seconds });
    return exit(0, `${token}\n`);
}
/** kubeadm token list: its text table (cmd/token.go), which holds every token whole. */
function kubeadmTokenList() {
    if (!apiReachable()) return exit(1, "", "failed to list bootstrap tokens: the API server is unreachable\n");
    const ttl = (t) => {
        const seconds = Math.floor((Date.parse(t.expires) - Date.now()) / 1000);
        return seconds >= 7200 ? `${Math.floor(seconds / 3600)}h` : seconds >= 120 ? `${Math.floor(seconds / 60)}m` : `${seconds}s`;
    };
    const rows = [["TOKEN", "TTL", "EXPIRES", "USAGES", "DESCRIPTION", "EXTRA GROUPS"]].concat(
        liveTokens().map((t) => [
            t.token,
            ttl(t),
            t.expires.replace(/\.\d{3}Z$/, "Z"),
            "authentication,signing",
            "<none>",
            "system:bootstrappers:kubeadm:default-node-token",
        ]),
    );
    const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)) + 3);
    return exit(0, rows.map((r) => r.map((c, i) => (i < r.length - 1 ? c.padEnd(widths[i]) : c)).join("") + "\n").join(""));
}
/** kubeadm token delete <id>: the token's Secret; an absent one is an error. */
function kubeadmTokenDelete(idOrToken) {
    if (!apiReachable()) return exit(1, "", "failed to delete bootstrap token: the API server is unreachable\n");
    const id = idOrToken.split(".")[0];
    if (!liveTokens().some((t) => t.token.split(".")[0] === id)) {
        return exit(1, "", `failed to delete bootstrap token "${id}": secrets "bootstrap-token-${id}" not found\n`);
    }
    cluster.tokens = cluster.tokens.filter((t) => t.token.split(".")[0] !== id);
    event("token-delete");
    return exit(0, `bootstrap token "${id}" deleted\n`);
}

function tokenOf(file) {
    const text = fs.readFileSync(file, "utf8");
    return /token: "?([a-z0-9]{6}\.[a-z0-9]{16})/.exec(text)?.[1];
}
function nextId() {
    cluster.nextId += 1;
    return (0x8e9e05c52164694dn + BigInt(cluster.nextId)).toString(16);
}

/** The API server kubectl talks to: --server, else the kubeconfig's (any live one here). */
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
    const output = option("-o") ?? "";
    if (verb === "get" && kind === "configmap" && name === "kubeadm-config") {
        const yaml = require("yaml");
        return exit(0, yaml.stringify({ ...cluster.configuration, kubernetesVersion: `v${cluster.version}` }));
    }
    if (verb === "get" && output.includes("conditions")) {
        // Readiness, as control_plane_gate reads it: a node is Ready when its kubelet and API server
        // run; its control-plane pods when their manifests are in place.
        event("ready-check", { kind });
        const ready = (n) => (apiUp(hostByName(n)) ? "True" : "False");
        if (kind === "nodes") return exit(0, cluster.nodes.map((n) => `${n} ${ready(n)}\n`).join(""));
        return exit(0, cluster.nodes.map((n) => `kube-apiserver-${n} ${ready(n)}\n`).join(""));
    }
    if (verb === "get" && kind === "pods" && output.includes("podIP")) {
        // The etcd pods use the host's network: their address is their node's.
        return exit(0, cluster.members.map((m) => hostByName(m.name)?.ip ?? "").join(" "));
    }
    if (verb === "get" && kind === "pods") return exit(0, cluster.members.map((m) => `pod/etcd-${m.name}\n`).join(""));
    if (verb === "get" && kind === "nodes") return exit(0, cluster.nodes.map((n) => `node/${n}\n`).join(""));
    if (verb === "drain" || verb === "uncordon") {
        event(verb, { node: kind });
        return exit(0);
    }
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
        return etcdctlInPod(
            positional.slice(positional.indexOf("--") + 2),
            cluster.members.find((m) => m.name === on.name),
        );
    }
    return exit(2, "", `kubectl stand-in: unsupported ${args.join(" ")}\n`);
}

// --- etcdctl's output -----------------------------------------------------------------------------
// As etcdctl 3.7 prints it (the release kubeadm pins for the default Kubernetes release;
// etcdctl/ctlv3/command/printer_fields.go and printer_simple.go, and the real binaries' output, which
// test/etcdctl.test.ts compares with these): `-w fields`, the form the scripts read, with member IDs in
// decimal; `-w simple`, with IDs in hex and, for endpoint status, the sixteen columns of 3.6 and later.
// A member here: { id (hex), name ("" until it starts), peerUrls, clientUrls, learner }.

const ETCD_VERSION = "3.7.0";
const ETCD_CLUSTER_ID = "cdf818194e3a8c32";
const decimalId = (hex) => (hex ? BigInt(`0x${hex}`).toString() : "0");
/** Go's %16x: hex, padded with spaces to 16 characters. */
const paddedId = (hex) => hex.padStart(16, " ");
/** etcd lists its members in the order of their IDs. */
const byId = (members) => [...members].sort((a, b) => (BigInt(`0x${a.id}`) < BigInt(`0x${b.id}`) ? -1 : 1));
function formatOf(flags) {
    return option("-w", flags) ?? option("--write-out", flags) ?? "simple";
}
function printMemberList(format, members, self) {
    const sorted = byId(members);
    if (format === "fields") {
        const header = `"ClusterID" : ${decimalId(ETCD_CLUSTER_ID)}\n"MemberID" : ${decimalId(self)}\n"RaftTerm" : 2\n`;
        const member = (m) =>
            `"ID" : ${decimalId(m.id)}\n"Name" : ${JSON.stringify(m.name)}\n` +
            m.peerUrls.map((u) => `"PeerURL" : ${JSON.stringify(u)}\n`).join("") +
            m.clientUrls.map((u) => `"ClientURL" : ${JSON.stringify(u)}\n`).join("") +
            `"IsLearner" : ${m.learner}\n\n`;
        return header + sorted.map(member).join("");
    }
    return sorted
        .map((m) => `${m.id}, ${m.name ? "started" : "unstarted"}, ${m.name}, ${m.peerUrls.join(",")}, ${m.clientUrls.join(",")}, ${m.learner}\n`)
        .join("");
}
/** endpoint status of the members that answered ({ url, member }), with the leader they see (hex, or undefined). */
function printEndpointStatus(format, answered, leader) {
    if (format === "fields") {
        return answered
            .map(
                ({ url, member }) =>
                    `"ClusterID" : ${decimalId(ETCD_CLUSTER_ID)}\n"MemberID" : ${decimalId(member.id)}\n"Revision" : 9\n"RaftTerm" : 2\n` +
                    `"Version" : "${ETCD_VERSION}"\n"StorageVersion" : "${ETCD_VERSION}"\n"DBSize" : 20480\n"DBSizeInUse" : 16384\n"DBSizeQuota" : 2147483648\n` +
                    `"Leader" : ${decimalId(leader)}\n"IsLearner" : ${member.learner}\n"RaftIndex" : 9\n"RaftTerm" : 2\n"RaftAppliedIndex" : 9\n"Errors" : []\n` +
                    `"Endpoint" : ${JSON.stringify(url)}\n"DowngradeTargetVersion" : ""\n"DowngradeEnabled" : false\n\n`,
            )
            .join("");
    }
    return answered
        .map(
            ({ url, member }) =>
                `${url}, ${member.id}, ${ETCD_VERSION}, ${ETCD_VERSION}, 20 kB, 16 kB, 20%, 2.1 GB, ${member.id === leader}, ${member.learner}, 2, 9, 9, , , false\n`,
        )
        .join("");
}
/** endpoint health of each endpoint ({ url, error }): fields on stdout; simple, the unhealthy ones on stderr. */
function printEndpointHealth(format, results) {
    const failed = results.some((r) => r.error);
    const tail = failed ? "Error: unhealthy cluster\n" : "";
    if (format === "fields") {
        const out = results.map((r) => `"Endpoint" : ${JSON.stringify(r.url)}\n"Health" : ${!r.error}\n"Took" : 2.459308ms\n"Error" : ${r.error ?? ""}\n\n`);
        return { code: failed ? 1 : 0, out: out.join(""), err: tail };
    }
    const out = results.filter((r) => !r.error).map((r) => `${r.url} is healthy: successfully committed proposal: took = 2.459308ms\n`);
    const err = results.filter((r) => r.error).map((r) => `${r.url} is unhealthy: failed to commit proposal: ${r.error}\n`);
    return { code: failed ? 1 : 0, out: out.join(""), err: err.join("") + tail };
}

/**
 * etcdctl inside the stacked etcd pod of member `own` (its endpoint is 127.0.0.1): the stacked cluster
 * (world.cluster.members). Endpoint commands ask that member only, or with --cluster every member the
 * member list names, which takes a quorum.
 */
function etcdctlInPod(words, own) {
    const command = [];
    const flags = [];
    for (let i = 0; i < words.length; i++) {
        if (["--cacert", "--cert", "--key", "--endpoints", "-w", "--write-out"].includes(words[i])) flags.push(words[i], words[++i]);
        else if (words[i].startsWith("-")) flags.push(words[i]);
        else command.push(words[i]);
    }
    const format = formatOf(flags);
    if (!hasQuorum() && command[0] !== "endpoint") return exit(1, "", "Error: context deadline exceeded\n");
    const url = (m) => `https://${hostByName(m.name)?.ip ?? "0.0.0.0"}:2379`;
    const asPrinted = (m) => ({ id: m.id, name: m.name, peerUrls: [url(m).replace("2379", "2380")], clientUrls: [url(m)], learner: m.learner });
    // The leader: kept while it runs, else one of the voters that run, while they are a quorum.
    const leaderOf = () => {
        const voters = cluster.members.filter((m) => !m.learner && memberUp(m));
        if (!hasQuorum()) return undefined;
        if (!voters.some((m) => m.id === cluster.leader)) cluster.leader = voters[0]?.id;
        return cluster.leader;
    };
    const self = own?.id ?? cluster.members.find((m) => memberUp(m))?.id;
    if (command[0] === "member" && command[1] === "list") return exit(0, printMemberList(format, cluster.members.map(asPrinted), self));
    const asked = flags.includes("--cluster") ? cluster.members : own ? [own] : [];
    if (command[0] === "endpoint" && flags.includes("--cluster") && !hasQuorum()) {
        return exit(1, "", "Error: failed to fetch endpoints from etcd cluster member list: context deadline exceeded\n");
    }
    if (command[0] === "endpoint" && command[1] === "health") {
        const results = asked.map((m) => ({
            url: url(m),
            error: !memberUp(m) || !hasQuorum() ? "context deadline exceeded" : m.learner ? "etcdserver: rpc not supported for learner" : undefined,
        }));
        const { code, out, err } = printEndpointHealth(format, results);
        return exit(code, out, err);
    }
    if (command[0] === "endpoint" && command[1] === "status") {
        const leader = leaderOf();
        const answered = asked.filter(memberUp).map((m) => ({ url: url(m), member: asPrinted(m) }));
        const silent = asked.filter((m) => !memberUp(m));
        return exit(
            silent.length ? 1 : 0,
            printEndpointStatus(format, answered, leader),
            silent.map((m) => `Failed to get the status of endpoint ${url(m)} (context deadline exceeded)\n`).join(""),
        );
    }
    if (command[0] === "member" && command[1] === "remove") {
        const member = cluster.members.find((m) => m.id === command[2]);
        if (!member) return exit(1, "", "Error: etcdserver: member not found\n");
        const rest = cluster.members.filter((m) => m !== member);
        const voters = rest.filter((m) => !m.learner);
        if (voters.filter(memberUp).length * 2 <= voters.length)
            return exit(1, "", "Error: etcdserver: re-configuration failed due to not enough started members\n");
        cluster.members = rest;
        if (cluster.leader === member.id) cluster.leader = undefined;
        const h = hostByName(member.name);
        if (h) h.member = false;
        event("member-remove", { member: member.name });
        return exit(0, `Member ${paddedId(member.id)} removed from cluster ${paddedId(ETCD_CLUSTER_ID)}\n`);
    }
    if (command[0] === "move-leader") {
        const from = leaderOf();
        const target = cluster.members.find((m) => m.id === command[1]);
        if (!target || target.learner || !memberUp(target)) return exit(1, "", "Error: etcdserver: bad leader transferee\n");
        cluster.leader = target.id;
        event("move-leader", { to: command[1] });
        return exit(0, `Leadership transferred from ${from} to ${target.id}\n`);
    }
    return exit(2, "", `etcdctl stand-in: unsupported ${words.join(" ")}\n`);
}

// --- external etcd -------------------------------------------------------------------------------
// world.etcd: { formed, members: [{ id, name ("" until it first starts), peerUrl, clientUrl ("" until
// it first starts), learner, host (the host id that runs it, once started) }], leader, nextId }.
// A host's etcd process: host.etcd = { active, memberId, error }; its data directory holds the id.

const etcd = (world.etcd ??= { formed: 0, members: [], leader: undefined, nextId: 0 });
const ipOfUrl = (url) => /\/\/([^:/]+)/.exec(url ?? "")?.[1];
/** The host whose etcd process currently runs the member. */
const etcdHostOf = (m) => m && Object.values(world.hosts).find((h) => h.etcd?.active && h.etcd.memberId === m.id);
/** Running: its process answers on its client URL (version, status), with or without a quorum. */
const etcdMemberRunning = (m) => Boolean(m && etcdHostOf(m)?.alive);
/** Up: as the model has no partitions, a member whose process runs is connected to its peers. */
const etcdMemberUp = etcdMemberRunning;
const externalMemberByClientUrl = (url) => etcd.members.find((m) => m.clientUrl !== "" && m.clientUrl === url);
const voters = () => etcd.members.filter((m) => !m.learner);
/** A member as etcdctl prints it: no client URL before it first starts. */
const printedMember = (m) => ({ id: m.id, name: m.name, peerUrls: [m.peerUrl], clientUrls: m.clientUrl ? [m.clientUrl] : [], learner: m.learner });
function etcdHasQuorum() {
    return etcd.members.length > 0 && voters().filter(etcdMemberUp).length * 2 > voters().length;
}
/** The leader: kept while it runs, else elected among the running voters when they are a majority. */
function etcdLeader() {
    const current = etcd.members.find((m) => m.id === etcd.leader);
    if (current && etcdMemberUp(current) && etcdHasQuorum()) return current;
    etcd.leader = etcdHasQuorum() ? voters().find(etcdMemberUp)?.id : undefined;
    return etcd.members.find((m) => m.id === etcd.leader);
}
function etcdNextId() {
    etcd.nextId += 1;
    return (0x2be1eb8f84b7f63en + BigInt(etcd.nextId) * 0x1000003n).toString(16);
}
/** Records a lost quorum the moment a change causes it (the tests require none). */
function afterEtcdChange(hadQuorum) {
    if (hadQuorum && !etcdHasQuorum()) event("etcd-quorum-lost");
}

/**
 * etcdctl run on a host (an external member's node), against the members on --endpoints. It dials the
 * first endpoint whose member runs, as its client balancer does; --cluster widens endpoint commands to
 * every member's client URL (from the member list). Every request but endpoint status/version needs a
 * quorum, as a linearizable read or a proposal does.
 */
function etcdctl() {
    const words = [];
    const flags = [];
    for (let i = 0; i < args.length; i++) {
        const a = args[i];
        if (["--cacert", "--cert", "--key", "--endpoints", "-w", "--write-out", "--dial-timeout", "--command-timeout", "--peer-urls"].includes(a)) {
            flags.push(a, args[++i]);
        } else if (a.startsWith("-")) flags.push(a);
        else words.push(a);
    }
    // A string slice: each --endpoints adds to the list, the first replaces the default.
    const given = flags.flatMap((f, i) => (f === "--endpoints" ? [flags[i + 1]] : f.startsWith("--endpoints=") ? [f.slice(12)] : []));
    const endpoints = (given.length ? given.join(",") : "https://127.0.0.1:2379").split(",");
    const format = formatOf(flags);
    const wholeCluster = flags.includes("--cluster");
    const dialled = endpoints.map(externalMemberByClientUrl).find(etcdMemberRunning);
    const unreachable = () => {
        const dead = endpoints.some((u) => hostByIp(ipOfUrl(u))?.alive === false);
        return exit(
            1,
            "",
            `{"level":"warn","msg":"retrying of unary invoker failed","error":"${dead ? "context deadline exceeded" : "connection refused"}"}\nError: context deadline exceeded\n`,
        );
    };
    const noQuorum = () => exit(1, "", "Error: etcdserver: request timed out\n");
    const [noun, verb, ...rest] = words;

    if (noun === "endpoint") {
        // Each endpoint on its own; with --cluster, the member list first (which needs the quorum).
        let urls = endpoints;
        if (wholeCluster) {
            if (!dialled) return unreachable();
            if (!etcdHasQuorum()) return noQuorum();
            urls = etcd.members.filter((m) => m.clientUrl).map((m) => m.clientUrl);
        }
        if (verb === "health") {
            // A read through the member: it needs the quorum, and a learner serves none.
            const results = urls.map((url) => {
                const m = externalMemberByClientUrl(url);
                const error =
                    !etcdMemberUp(m) || !etcdHasQuorum() ? "context deadline exceeded" : m.learner ? "etcdserver: rpc not supported for learner" : undefined;
                return { url, error };
            });
            const { code, out, err } = printEndpointHealth(format, results);
            return exit(code, out, err);
        }
        if (verb === "status") {
            const leader = etcdLeader();
            const answered = urls
                .filter((u) => etcdMemberRunning(externalMemberByClientUrl(u)))
                .map((url) => ({ url, member: printedMember(externalMemberByClientUrl(url)) }));
            const silent = urls.filter((u) => !etcdMemberRunning(externalMemberByClientUrl(u)));
            return exit(
                silent.length ? 1 : 0,
                printEndpointStatus(format, answered, leader?.id),
                silent.map((u) => `Failed to get the status of endpoint ${u} (context deadline exceeded)\n`).join(""),
            );
        }
    }
    if (!dialled) return unreachable();
    if (!etcdHasQuorum()) return noQuorum();

    if (noun === "member" && verb === "list") return exit(0, printMemberList(format, etcd.members.map(printedMember), dialled.id));
    if (noun === "member" && verb === "add") return etcdMemberAdd(rest[0], option("--peer-urls", flags), flags.includes("--learner"));
    if (noun === "member" && verb === "remove") return etcdMemberRemove(rest[0]);
    if (noun === "member" && verb === "promote") return etcdMemberPromote(rest[0]);
    if (noun === "move-leader") {
        // etcdctl asks each endpoint in turn for its status, and sends the request to the first that
        // leads; an endpoint that does not answer before it ends the command.
        const leader = etcdLeader();
        for (const u of endpoints) {
            if (u === leader?.clientUrl) break;
            if (!etcdMemberRunning(externalMemberByClientUrl(u))) return exit(1, "", "Error: context deadline exceeded\n");
        }
        if (!endpoints.includes(leader?.clientUrl)) return exit(1, "", `Error: no leader endpoint given at [${endpoints.join(" ")}]\n`);
        const target = etcd.members.find((m) => m.id === rest[0]);
        if (!target || target.learner || !etcdMemberUp(target)) return exit(1, "", "Error: etcdserver: bad leader transferee\n");
        event("move-leader", { to: target.name, etcd: "external" });
        etcd.leader = target.id;
        return exit(0, `Leadership transferred from ${leader.id} to ${target.id}\n`);
    }
    return exit(2, "", `etcdctl stand-in: unsupported ${args.join(" ")}\n`);
}

/**
 * member add, with etcd's strict reconfiguration checks: the leader must be connected to every voting
 * member (a member that is down blocks every add, learners too: "unhealthy cluster", as in 3.5 and
 * 3.6; 3.7 asks only for a quorum of the larger cluster, which for three members is the same), a
 * voting member only while the members that have started stay a quorum of the larger cluster, and one
 * learner at a time.
 */
function etcdMemberAdd(name, peerUrl, learner) {
    if (!peerUrl) return exit(1, "", "Error: member peer urls not provided\n");
    if (etcd.members.some((m) => m.peerUrl === peerUrl)) return exit(1, "", "Error: etcdserver: Peer URLs already exists\n");
    if (learner && etcd.members.some((m) => m.learner)) return exit(1, "", "Error: etcdserver: too many learner members in cluster\n");
    if (!learner) {
        const started = voters().filter((m) => m.name).length;
        const total = voters().length + 1;
        if (!(started === 1 && total === 2) && started < Math.floor(total / 2) + 1) {
            return exit(1, "", "Error: etcdserver: re-configuration failed due to not enough started members\n");
        }
    }
    if (voters().some((m) => !etcdMemberUp(m))) return exit(1, "", "Error: etcdserver: unhealthy cluster\n");
    const member = { id: etcdNextId(), name: "", peerUrl, clientUrl: "", learner, host: undefined };
    etcd.members.push(member);
    event("etcd-add", { member: name, learner, etcd: "external" });
    const initial = byId(etcd.members)
        .map((m) => `${m === member ? name : m.name}=${m.peerUrl}`)
        .join(",");
    return exit(
        0,
        `Member ${paddedId(member.id)} added${learner ? " as learner " : " "}to cluster ${paddedId(ETCD_CLUSTER_ID)}\n\n` +
            `ETCD_NAME="${name}"\nETCD_INITIAL_CLUSTER="${initial}"\nETCD_INITIAL_ADVERTISE_PEER_URLS="${peerUrl}"\nETCD_INITIAL_CLUSTER_STATE="existing"\n`,
    );
}

/**
 * member remove: a learner or a member that is down goes freely (while the members that have started
 * stay a quorum); a running voter only if the running voters left still form a majority. The removed
 * member's process stops: etcd exits when it learns it was removed, and refuses to start again.
 */
function etcdMemberRemove(id) {
    const member = etcd.members.find((m) => m.id === id);
    if (!member) return exit(1, "", `Error: etcdserver: member not found\n`);
    if (!member.learner) {
        const rest = voters().filter((m) => m !== member);
        if (rest.filter((m) => m.name).length < Math.floor(rest.length / 2) + 1) {
            return exit(1, "", "Error: etcdserver: re-configuration failed due to not enough started members\n");
        }
        if (etcdMemberUp(member) && rest.filter(etcdMemberUp).length < Math.floor(rest.length / 2) + 1) {
            return exit(1, "", "Error: etcdserver: unhealthy cluster\n");
        }
    }
    const running = etcdHostOf(member);
    if (running) Object.assign(running.etcd, { active: false, error: "the member has been permanently removed from the cluster" });
    etcd.members = etcd.members.filter((m) => m !== member);
    afterEtcdChange(true);
    event("etcd-remove", { member: member.name || "(unstarted)", peerUrl: member.peerUrl, etcd: "external" });
    return exit(0, `Member ${paddedId(id)} removed from cluster ${paddedId(ETCD_CLUSTER_ID)}\n`);
}

/**
 * member promote: a learner that runs and has caught up with the leader becomes a voter, if the
 * members that have started stay a quorum of the larger cluster (IsReadyToPromoteMember). A learner
 * catches up after etcd.learnerCatchUp refused promotions from its start (2 unless a test sets it):
 * etcd refuses until its log matches 90% of the leader's.
 */
function etcdMemberPromote(id) {
    const member = etcd.members.find((m) => m.id === id);
    if (!member) return exit(1, "", "Error: etcdserver: member not found\n");
    if (!member.learner) return exit(1, "", "Error: etcdserver: can only promote a learner member\n");
    const notInSync = "Error: etcdserver: can only promote a learner member which is in sync with leader\n";
    if (!etcdMemberUp(member)) return exit(1, "", notInSync);
    if ((member.behind ?? 0) > 0) {
        member.behind -= 1;
        return exit(1, "", notInSync);
    }
    const started = voters().filter((m) => m.name).length + 1;
    if (started < Math.floor((voters().length + 1) / 2) + 1)
        return exit(1, "", "Error: etcdserver: re-configuration failed due to not enough started members\n");
    member.learner = false;
    delete member.behind;
    event("etcd-promote", { member: member.name, etcd: "external" });
    return exit(0, `Member ${paddedId(id)} promoted in cluster ${paddedId(ETCD_CLUSTER_ID)}\n`);
}

/** The values systemd gives etcd: its unit's ExecStart flags and its EnvironmentFile. */
function etcdLaunchSettings(h) {
    const unit = readHostFile(h, "etc/systemd/system/etcd.service");
    const env = readHostFile(h, "etc/etcd/cluster.env");
    const flag = (name) => new RegExp(`--${name}=(\\S+)`).exec(unit ?? "")?.[1];
    const variable = (name) => new RegExp(`^${name}=(.*)$`, "m").exec(env ?? "")?.[1];
    return {
        unit,
        env,
        name: flag("name"),
        peerUrl: flag("initial-advertise-peer-urls"),
        clientUrl: flag("advertise-client-urls"),
        initialCluster: variable("ETCD_INITIAL_CLUSTER"),
        state: variable("ETCD_INITIAL_CLUSTER_STATE"),
    };
}

/**
 * Starts the etcd process of an etcd host as the real etcd would. With data: it is the member the
 * data belongs to, unless that member was removed. Without data, by ETCD_INITIAL_CLUSTER_STATE:
 * - new: the first member of a new cluster forms it from the initial cluster; a later one is one of
 *   those initial members (its peer URL listed, never started); a member already started elsewhere
 *   refuses ("already been bootstrapped"), and a peer URL the cluster does not list belongs to
 *   another cluster (cluster ID mismatch): etcd keeps failing.
 * - existing: the peer URLs of the initial cluster must be exactly the live cluster's (etcd validates
 *   them), this member among them as added, and the cluster must have a quorum to take it in.
 * Returns an error, or undefined once the process runs (it may still wait for a quorum to serve).
 */
function startEtcd(h) {
    const s = etcdLaunchSettings(h);
    h.etcd ??= { active: false };
    if (!s.unit) return "Unit etcd.service not found.";
    if (s.env === undefined) return "etcd.service: Failed to load environment files";
    const dataFile = path.join(h.root, "var/lib/etcd/member/id");
    const fail = (error) => {
        Object.assign(h.etcd, { active: false, memberId: undefined, error });
        return error;
    };
    const run = (member) => {
        const hadQuorum = etcdHasQuorum();
        Object.assign(h.etcd, { active: true, memberId: member.id, error: undefined });
        // A learner's log starts behind the leader's.
        if (member.learner && !member.name) member.behind = etcd.learnerCatchUp ?? 2;
        Object.assign(member, { name: s.name, clientUrl: s.clientUrl, host: h.id });
        fs.mkdirSync(path.dirname(dataFile), { recursive: true });
        fs.writeFileSync(dataFile, `${member.id}\n`);
        if (!hadQuorum && etcdHasQuorum()) event("etcd-quorum", { etcd: "external" });
        return undefined;
    };
    if (fs.existsSync(dataFile)) {
        const member = etcd.members.find((m) => m.id === fs.readFileSync(dataFile, "utf8").trim());
        return member ? run(member) : fail("the member has been permanently removed from the cluster");
    }
    if (s.state === "new") {
        if (etcd.formed === 0 || etcd.members.length === 0) {
            const initial = (s.initialCluster ?? "").split(",").map((pair) => pair.split("="));
            if (!initial.some(([, url]) => url === s.peerUrl)) return fail("couldn't find local name in the initial cluster configuration");
            etcd.formed += 1;
            etcd.members = initial.map(([, peerUrl]) => ({ id: etcdNextId(), name: "", peerUrl, clientUrl: "", learner: false, host: undefined }));
            event("etcd-form", { members: initial.map(([name]) => name), etcd: "external" });
        }
        const member = etcd.members.find((m) => m.peerUrl === s.peerUrl);
        if (!member) return fail("request cluster ID mismatch");
        if (member.name) return fail(`member ${member.id} has already been bootstrapped`);
        return run(member);
    }
    if (s.state === "existing") {
        // As etcd reads it (types.NewURLsMap): a map from names to peer URLs, so entries of one name
        // are one member; then each live member must match one of them by its peer URLs
        // (ValidateClusterAndAssignIDs), and this member's name must be among them.
        const byName = new Map();
        for (const pair of (s.initialCluster ?? "").split(",").filter(Boolean)) {
            const [name, url] = [pair.slice(0, pair.indexOf("=")), pair.slice(pair.indexOf("=") + 1)];
            byName.set(name, [...(byName.get(name) ?? []), url].sort());
        }
        if (byName.size !== etcd.members.length) return fail("error validating peerURLs: member count is unequal");
        const given = [...byName.values()].map((urls) => urls.join(","));
        const unmatched = etcd.members.find((m) => !given.includes(m.peerUrl));
        if (unmatched) return fail(`error validating peerURLs: PeerURLs: no match found for existing member (${unmatched.id}, [${unmatched.peerUrl}])`);
        if (!byName.has(s.name)) return fail("couldn't find local name in the initial cluster configuration");
        const member = etcd.members.find((m) => m.peerUrl === s.peerUrl);
        if (!member || byName.get(s.name).join(",") !== s.peerUrl) return fail("couldn't find local name in the initial cluster configuration");
        if (member.name) return fail(`member ${member.id} has already been bootstrapped`);
        if (!etcdHasQuorum()) return fail("cannot fetch cluster info from peer urls: no leader");
        return run(member);
    }
    return fail(`invalid ETCD_INITIAL_CLUSTER_STATE ${s.state}`);
}

/**
 * systemctl: the etcd unit of an external member (start, restart, stop, is-active); every other unit
 * and verb (daemon-reload, enable, the backup timers) succeeds and does nothing.
 */
function systemctl() {
    const words = args.filter((a) => !a.startsWith("-"));
    const [verb, unit] = words;
    if (verb === "restart" && /^kubelet(\.service)?$/.test(unit)) {
        host.kubelet = host.packages.kubelet;
        event("kubelet-restart", { version: host.kubelet });
        return exit(0);
    }
    if (verb === "restart" && /^containerd(\.service)?$/.test(unit)) {
        event("containerd-restart");
        return exit(0);
    }
    if (verb === "start" && unit === "kubeadm-ha-etcd-snapshot-now.service") {
        // The backup program's "now": a snapshot needs a member with quorum behind it.
        if (!(host.role === "etcd" ? etcdHasQuorum() : hasQuorum())) return exit(1, "", "Job for kubeadm-ha-etcd-snapshot-now.service failed\n");
        event("snapshot-now");
        return exit(0);
    }
    if (!/^etcd(\.service)?$/.test(unit ?? "")) return exit(0);
    host.etcd ??= { active: false };
    if (verb === "is-active") return exit(host.etcd.active ? 0 : 3, args.includes("--quiet") ? "" : host.etcd.active ? "active\n" : "activating\n");
    if (verb === "stop") {
        const hadQuorum = etcdHasQuorum();
        Object.assign(host.etcd, { active: false });
        afterEtcdChange(hadQuorum);
        return exit(0);
    }
    if (verb === "start" || verb === "restart") {
        if (verb === "start" && host.etcd.active) return exit(0);
        const hadQuorum = etcdHasQuorum();
        host.etcd.active = false;
        const error = startEtcd(host);
        afterEtcdChange(hadQuorum);
        event("etcd-start", { error, etcd: "external" });
        // --no-block queues the job and returns; otherwise systemd waits for etcd's readiness
        // notification (Type=notify), which it sends once it has joined a cluster with a quorum.
        if (args.includes("--no-block")) return exit(0);
        if (error) return exit(1, "", `Job for etcd.service failed: ${error}\n`);
        if (!etcdHasQuorum()) return exit(1, "", "Job for etcd.service failed because a timeout was exceeded.\n");
        return exit(0);
    }
    if (["enable", "disable", "daemon-reload"].includes(verb)) return exit(0);
    return exit(2, "", `systemctl stand-in: unsupported ${args.join(" ")}\n`);
}

// --- packages ------------------------------------------------------------------------------------

/** The minor whose pkgs.k8s.io repository the host's sources list names. */
function repositoryMinor() {
    const list = readHostFile(host, "etc/apt/sources.list.d/kubernetes.list") ?? "";
    return /core:\/stable:\/v(\d+\.\d+)\/deb/.exec(list)?.[1];
}
function aptWords() {
    const words = [];
    for (let i = 0; i < args.length; i++) {
        if (args[i] === "-o") i++;
        else if (!args[i].startsWith("-")) words.push(args[i]);
    }
    return words;
}
/** apt-get update and install: a pinned "pkg=1.34.2-*" comes from the repository of its minor; held packages are not changed. */
function aptGet() {
    const [verb, ...packages] = aptWords();
    if (verb === "update") return exit(0);
    if (verb !== "install") return exit(2, "", `apt-get stand-in: unsupported ${args.join(" ")}\n`);
    const minor = repositoryMinor();
    for (const spec of packages) {
        const [pkg, pattern] = spec.split("=");
        const version = pattern?.replace(/-\*$/, "");
        if (!version || !(world.releases[minor] ?? []).includes(version)) return exit(100, "", `E: Version '${pattern}' for '${pkg}' was not found\n`);
        if ((host.held ?? []).includes(pkg) && host.packages[pkg] !== version)
            return exit(100, "", "E: Held packages were changed and -y was used without --allow-change-held-packages.\n");
    }
    for (const spec of packages) {
        const [pkg, pattern] = spec.split("=");
        host.packages[pkg] = pattern.replace(/-\*$/, "");
    }
    event("apt-install", { packages });
    return exit(0);
}
function aptMark() {
    const [verb, ...packages] = aptWords();
    host.held = verb === "hold" ? [...new Set([...(host.held ?? []), ...packages])] : (host.held ?? []).filter((p) => !packages.includes(p));
    return exit(0);
}
function aptCache() {
    const minor = repositoryMinor();
    return exit(
        0,
        [...(world.releases[minor] ?? [])]
            .reverse()
            .map((v) => `   kubeadm | ${v}-1.1 | https://pkgs.k8s.io/core:/stable:/v${minor}/deb  Packages\n`)
            .join(""),
    );
}
/** crictl ps --name ^x$ --state running -q: a static pod runs while its manifest is in the kubelet's directory. */
function crictl() {
    const name = (option("--name") ?? "").replace(/^\^|\$$/g, "");
    const running = host.alive && readHostFile(host, `etc/kubernetes/manifests/${name}.yaml`) !== undefined;
    return exit(0, running ? `${name}-container-id\n` : "");
}

// --- etcd releases, images and snapshots ---------------------------------------------------------

const minorOf = (version) => /^(\d+\.\d+)/.exec(version ?? "")?.[1];
const compareReleases = (a, b) => {
    const [x, y] = [a, b].map((v) => v.split(/[.-]/).map(Number));
    for (let i = 0; i < 3; i++) if (x[i] !== y[i]) return x[i] - y[i];
    return 0;
};
/** The etcd release of a registry.k8s.io/etcd image ("3.7.0" of registry.k8s.io/etcd:3.7.0-0), or undefined. */
const etcdImageRelease = (image) => /^registry\.k8s\.io\/etcd:(\d+\.\d+\.\d+)-\d+$/.exec(image ?? "")?.[1];
/**
 * Whether an etcd image carries etcdutl: the registry.k8s.io/etcd images promoted from etcd's own
 * builds (etcd's Dockerfile adds etcd, etcdctl and etcdutl; kubernetes/k8s.io#8596, from 3.5.23 and
 * 3.6.6 on) do; the ones Kubernetes built itself (cluster/images/etcd, which copies etcd and etcdctl
 * from each release) do not.
 */
function imageHasEtcdutl(release) {
    const minor = minorOf(release);
    if (minor === "3.5") return compareReleases(release, "3.5.23") >= 0;
    if (minor === "3.6") return compareReleases(release, "3.6.6") >= 0;
    return compareReleases(release, "3.7.0") >= 0;
}

/** A file the model takes for an etcd snapshot (the JSON LifecycleSimulation.putSnapshot stores), or undefined. */
function readSnapshot(file) {
    try {
        const snapshot = JSON.parse(fs.readFileSync(file, "utf8"));
        return snapshot.kind === "simulated etcd snapshot" ? snapshot : undefined;
    } catch {
        return undefined;
    }
}

/**
 * etcdutl of `release` (an external member's, a release tarball's, an etcd image's): version,
 * snapshot status (with the snapshot's storage version from 3.6 on, as etcd 3.6 and later record one),
 * and snapshot restore with etcdutl's own checks (--bump-revision and --mark-compacted together, an
 * empty data directory), and the model's: a snapshot restores only with the etcdutl of the etcd
 * major.minor that wrote it (the Kubernetes etcd guide). A restore writes the data directory's member
 * (its snap/db: the restored revision, the compaction, the new cluster) and records etcd-restore.
 */
function etcdutl(words, release) {
    const positional = [];
    for (let i = 0; i < words.length; i++) {
        if (
            [
                "--data-dir",
                "--name",
                "--initial-cluster",
                "--initial-cluster-token",
                "--initial-advertise-peer-urls",
                "--bump-revision",
                "-w",
                "--write-out",
            ].includes(words[i])
        )
            i++;
        else if (!words[i].startsWith("-")) positional.push(words[i]);
    }
    const [command, sub, file] = positional;
    if (!release) return exit(2, "", "etcdutl stand-in: no release (SIM_ETCD_RELEASE)\n");
    if (command === "version") return exit(0, `etcdutl version: ${release}\nAPI version: ${minorOf(release)}\n`);
    if (command !== "snapshot" || !["status", "restore"].includes(sub)) return exit(2, "", `etcdutl stand-in: unsupported ${words.join(" ")}\n`);
    const snapshot = readSnapshot(file);
    if (!snapshot) return exit(1, "", `Error: snapshot file integrity check failed: ${file} is no etcd snapshot\n`);
    const storageVersion = compareReleases(snapshot.etcd, "3.6.0") >= 0 ? `${minorOf(snapshot.etcd)}.0` : "";
    if (sub === "status") {
        const size = fs.statSync(file).size;
        const version = compareReleases(release, "3.6.0") >= 0 ? `"Version" : ${storageVersion}\n` : "";
        return exit(0, `"Hash" : 1234567890\n"Revision" : ${snapshot.revision}\n"Keys" : ${snapshot.keys}\n"Size" : ${size}\n${version}`);
    }
    const bump = Number(option("--bump-revision", words) ?? "0");
    const compacted = words.includes("--mark-compacted");
    if ((bump === 0 && compacted) || (bump > 0 && !compacted)) return exit(128, "", "Error: --mark-compacted required if --revision-bump > 0\n");
    if (minorOf(snapshot.etcd) !== minorOf(release)) {
        return exit(
            1,
            "",
            `model: etcdutl ${release} restores snapshots of etcd ${minorOf(release)} only (the same major.minor, the Kubernetes etcd guide); this one was written by etcd ${snapshot.etcd}\n`,
        );
    }
    const dataDir = option("--data-dir", words) ?? `${option("--name", words) ?? "default"}.etcd`;
    if (fs.existsSync(dataDir) && fs.readdirSync(dataDir).length > 0) return exit(1, "", `Error: data-dir "${dataDir}" not empty or could not be read\n`);
    const restored = {
        restoredBy: release,
        snapshot,
        revision: snapshot.revision + bump,
        compactedAt: compacted ? snapshot.revision + bump : undefined,
        name: option("--name", words),
        initialCluster: option("--initial-cluster", words),
        token: option("--initial-cluster-token", words),
        peerUrl: option("--initial-advertise-peer-urls", words),
    };
    fs.mkdirSync(path.join(dataDir, "member", "snap"), { recursive: true });
    fs.mkdirSync(path.join(dataDir, "member", "wal"), { recursive: true });
    fs.writeFileSync(path.join(dataDir, "member", "snap", "db"), JSON.stringify(restored));
    event("etcd-restore", { version: release, from: snapshot.etcd, member: restored.name, bump, compacted });
    return exit(0, `restored snapshot ${file} into ${dataDir} (revision ${restored.revision})\n`);
}

/**
 * containerd's ctr, for running a tool of an etcd image: `images pull` of a registry.k8s.io/etcd
 * image, and `run --rm [--mount ...] <image> <id> etcdutl ...` of a pulled one (its bind mounts are
 * at their own paths, so the tool runs on the host's files), when the image carries etcdutl.
 */
function ctr() {
    const words = [];
    for (let i = 0; i < args.length; i++) {
        if (["--namespace", "-n", "--mount", "--address", "--platform"].includes(args[i])) i++;
        else if (!args[i].startsWith("-") || words.length >= 4) words.push(args[i]);
    }
    host.images ??= [];
    if (words[0] === "images" && words[1] === "pull") {
        if (!etcdImageRelease(words[2])) return exit(1, "", `ctr: failed to resolve reference "${words[2]}": not found\n`);
        if (!host.images.includes(words[2])) host.images.push(words[2]);
        return exit(0, `${words[2]}: resolved\nunpacking linux/amd64 done\n`);
    }
    if (words[0] === "run") {
        const [, image, , command] = words;
        if (!host.images.includes(image)) return exit(1, "", `ctr: image "${image}": not found\n`);
        const release = etcdImageRelease(image);
        if (command !== "etcdutl" || !imageHasEtcdutl(release)) {
            return exit(1, "", `ctr: failed to create shim task: OCI runtime create failed: exec: "${command}": executable file not found in $PATH\n`);
        }
        return etcdutl(args.slice(args.indexOf(command, args.indexOf(image) + 1) + 1), release);
    }
    return exit(2, "", `ctr stand-in: unsupported ${args.join(" ")}\n`);
}

/**
 * sha256sum --check (the rest is the real sha256sum: hosts/sha256sum): each "<digest>  <file>" line of
 * stdin. A release tarball the model's curl wrote, unchanged since, checks as the digest etcd
 * published for it (world.etcdReleases); any other file as its own.
 */
function sha256sumCheck() {
    const { createHash } = require("node:crypto");
    const quiet = args.includes("--quiet");
    let failed = 0;
    const out = [];
    // Under the model's server (model-server.cjs), the call's standard input comes with the call.
    const stdin = process.stdinText ?? fs.readFileSync(0, "utf8");
    for (const line of stdin.split("\n").filter((l) => l.trim() !== "")) {
        const match = /^([0-9a-fA-F]{64}) [ *](.+)$/.exec(line);
        if (!match) {
            if (args.includes("--strict")) failed++;
            continue;
        }
        const [, digest, file] = match;
        if (!fs.existsSync(file)) return exit(1, "", `sha256sum: ${file}: No such file or directory\n`);
        const actual = createHash("sha256").update(fs.readFileSync(file)).digest("hex");
        const download = world.downloads?.[path.resolve(file)];
        const expected = download && download.sha256 === actual ? world.etcdReleases?.[download.version]?.[download.arch] : actual;
        if (digest.toLowerCase() === expected) {
            if (!quiet) out.push(`${file}: OK\n`);
        } else {
            failed++;
            out.push(`${file}: FAILED\n`);
        }
    }
    return exit(failed ? 1 : 0, out.join(""), failed ? `sha256sum: WARNING: ${failed} computed checksum did NOT match\n` : "");
}

// --- network -------------------------------------------------------------------------------------

/**
 * What curl prints and writes for a response: the body to -o (else stdout), the headers to -D, the
 * status for -w '%{http_code}'; with --fail (-f), a status of 400 or more is exit 22 and nothing else.
 */
function respond(status, body, headers = {}) {
    const failing = args.includes("--fail") || args.some((a) => /^-[A-Za-z]+$/.test(a) && a.includes("f"));
    if (failing && status >= 400) return exit(22, "", `curl: (22) The requested URL returned error: ${status}\n`);
    const dump = option("-D");
    if (dump) {
        const lines = [`HTTP/1.1 ${status} ${status === 200 ? "OK" : "Not Found"}`, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)];
        fs.writeFileSync(dump, `${lines.join("\r\n")}\r\n\r\n`);
    }
    const file = option("-o");
    if (file) fs.writeFileSync(file, body);
    const written = option("-w") === "%{http_code}" ? String(status) : "";
    return exit(0, file ? written : `${body}${written}`);
}

/** The instance metadata service (IMDSv2): a token, the instance profile's role, its credentials. */
function imds(url) {
    const route = new URL(url).pathname;
    if (route === "/latest/api/token") return respond(200, "simulated-imds-token");
    if (route === "/latest/meta-data/iam/security-credentials/") return respond(200, "kubeadm-ha-node\n");
    if (route === "/latest/meta-data/iam/security-credentials/kubeadm-ha-node") {
        return respond(
            200,
            JSON.stringify({ Code: "Success", AccessKeyId: "ASIASIMULATED", SecretAccessKey: "simulated/secret+key", Token: "simulated+session/token=" }),
        );
    }
    return respond(404, "");
}

/** S3, virtual-hosted style: GET of an object of world.s3, with its user metadata as x-amz-meta-* headers. */
function s3(url) {
    const { hostname, pathname } = new URL(url);
    const bucket = hostname.split(".s3.")[0];
    const object = (world.s3 ?? {})[`${bucket}/${decodeURIComponent(pathname.slice(1))}`];
    if (!object) return respond(404, "<Error><Code>NoSuchKey</Code></Error>");
    const headers = Object.fromEntries(Object.entries(object.metadata).map(([k, v]) => [`x-amz-meta-${k}`, v]));
    return respond(200, Buffer.from(object.body, "base64"), headers);
}

/**
 * An etcd release tarball from GitHub, for the releases world.etcdReleases lists: etcd-v<v>-linux-<arch>/
 * with etcdutl and etcdctl stand-ins of that release. Recorded in world.downloads, so sha256sum checks it
 * as the tarball etcd published.
 */
function etcdRelease(url) {
    const found = /^https:\/\/github\.com\/etcd-io\/etcd\/releases\/download\/v([^/]+)\/etcd-v\1-linux-(amd64|arm64)\.tar\.gz$/.exec(url);
    const file = option("-o");
    if (!found || !world.etcdReleases?.[found[1]] || !file) return respond(404, "Not Found");
    const [, version, arch] = found;
    const name = `etcd-v${version}-linux-${arch}`;
    const work = fs.mkdtempSync(path.join(require("node:os").tmpdir(), "sim-etcd-release-"));
    fs.mkdirSync(path.join(work, name));
    const standIn = (t) => `#!/bin/sh\nSIM_TOOL=${t} SIM_ETCD_RELEASE=${version} exec "${path.join(__dirname, "model-call")}" "$@"\n`;
    for (const t of ["etcdutl", "etcdctl"]) fs.writeFileSync(path.join(work, name, t), standIn(t), { mode: 0o755 });
    fs.writeFileSync(path.join(work, name, "etcd"), "#!/bin/sh\nexit 1\n", { mode: 0o755 });
    const tar = require("node:child_process").spawnSync("tar", ["-czf", path.resolve(file), "-C", work, name]);
    fs.rmSync(work, { recursive: true, force: true });
    if (tar.status !== 0) return exit(2, "", "model: could not make the release tarball\n");
    const sha256 = require("node:crypto").createHash("sha256").update(fs.readFileSync(file)).digest("hex");
    world.downloads = { ...world.downloads, [path.resolve(file)]: { version, arch, sha256 } };
    return exit(0);
}

function curl() {
    const any = args.find((a) => /^https?:\/\//.test(a));
    if (/^http:\/\/169\.254\.169\.254\//.test(any)) return imds(any);
    if (/^https:\/\/[^/]+\.s3\.[^/]+\.amazonaws\.com\//.test(any)) return s3(any);
    if (/^https:\/\/github\.com\//.test(any)) return etcdRelease(any);
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
    // A listening API server that cannot reach etcd answers /readyz with 500 (curl --fail: 22).
    if (h.api && !apiUp(h)) return exit(22);
    return exit(h.api ? 0 : 7);
}

switch (tool) {
    case "kubeadm":
        kubeadm();
        break;
    case "kubectl":
        kubectl();
        break;
    case "etcdctl":
        etcdctl();
        break;
    case "systemctl":
        systemctl();
        break;
    case "curl":
        curl();
        break;
    case "kubelet":
        exit(0, `Kubernetes v${host.kubelet}\n`);
        break;
    case "apt-get":
        aptGet();
        break;
    case "apt-mark":
        aptMark();
        break;
    case "apt-cache":
        aptCache();
        break;
    case "crictl":
        crictl();
        break;
    case "etcdutl":
        etcdutl(args, process.env.SIM_ETCD_RELEASE);
        break;
    case "ctr":
        ctr();
        break;
    case "sha256sum":
        sha256sumCheck();
        break;
    default:
        exit(0);
}
