// Preloaded into every Node process of a command under test (NODE_OPTIONS=--require):
// records each outbound socket connection and host name lookup in CONNECTION_AUDIT_LOG,
// one JSON object per line, and refuses the ones that would leave the machine.
"use strict";
const dns = require("node:dns");
const fs = require("node:fs");
const net = require("node:net");

const LOG = process.env.CONNECTION_AUDIT_LOG;
const LOOPBACK = new Set(["127.0.0.1", "::1", "localhost"]);

function record(kind, target) {
  fs.appendFileSync(LOG, JSON.stringify({ runtime: "node", pid: process.pid, kind, target }) + "\n");
}

function describe(args) {
  // Socket#connect(options[, cb]), (path[, cb]) or (port[, host][, cb]).
  const first = Array.isArray(args[0]) ? args[0][0] : args[0];
  if (first !== null && typeof first === "object") {
    return first.path ? { unix: true, target: first.path } : { host: first.host ?? "localhost", port: first.port };
  }
  if (typeof first === "string" && Number.isNaN(Number(first))) return { unix: true, target: first };
  return { host: typeof args[1] === "string" ? args[1] : "localhost", port: first };
}

// Proof that this process was audited at all.
record("loaded", process.argv.slice(1, 2).join(" "));

const connect = net.Socket.prototype.connect;
net.Socket.prototype.connect = function auditedConnect(...args) {
  const where = describe(args);
  if (where.unix) return connect.apply(this, args);
  record("connect", `${where.host}:${where.port}`);
  if (!LOOPBACK.has(where.host)) {
    process.nextTick(() => this.destroy(new Error(`connection audit: refused ${where.host}`)));
    return this;
  }
  return connect.apply(this, args);
};

for (const owner of [dns, dns.promises]) {
  const lookup = owner.lookup;
  owner.lookup = function auditedLookup(hostname, ...rest) {
    record("lookup", String(hostname));
    return lookup.call(this, hostname, ...rest);
  };
}
