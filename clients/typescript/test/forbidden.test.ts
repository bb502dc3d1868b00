// A user the daemon does not allow on its socket: connect() fails with CannotConnectError whose
// cause is the daemon's ForbiddenError. Run as root only (the client runs as nobody, uid 65534).

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { after, before, test } from "node:test";

import { Daemon } from "./daemon.js";

const NOBODY = 65534;
const CLIENT = new URL("../src/index.js", import.meta.url).href;
const PROBE = `
const { ReaderhostClient } = await import(${JSON.stringify(CLIENT)});
const outcome = await ReaderhostClient.connect({ path: process.argv[1] }).then(
  (client) => { client.close(); return { connected: true }; },
  (error) => ({ name: error.name, message: error.message, cause: error.cause?.name, reason: error.cause?.reason }),
);
console.log(JSON.stringify(outcome));
`;
const asRoot = process.getuid?.() === 0;

let daemon: Daemon;

before(async () => {
  if (asRoot) daemon = await Daemon.start();
});

after(async () => {
  if (asRoot) await daemon?.stop(); // undefined when it failed to start
});

test("a user not allowed gets CannotConnectError caused by ForbiddenError", { skip: !asRoot && "needs root" }, async () => {
  daemon.openToAll();
  const child = spawn(process.execPath, ["--input-type=module", "-e", PROBE, daemon.socketPath], {
    uid: NOBODY,
    gid: NOBODY,
    cwd: fileURLToPath(new URL(".", import.meta.url)),
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  child.stdout.setEncoding("utf8").on("data", (text: string) => (out += text));
  child.stderr.setEncoding("utf8").on("data", (text: string) => (err += text));
  const [code] = (await once(child, "close")) as [number | null];
  assert.equal(code, 0, err);
  const outcome = JSON.parse(out) as Record<string, string>;
  assert.equal(outcome.name, "CannotConnectError", out);
  assert.equal(outcome.cause, "ForbiddenError", out);
  assert.equal(outcome.reason, "FORBIDDEN", out);
  assert.match(outcome.message ?? "", /refused the connection/);
});
