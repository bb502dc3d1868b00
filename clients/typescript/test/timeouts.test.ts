// Timeouts against a real readerhostd that does not answer (stopped with SIGSTOP): a call, a connection.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { CannotConnectError, ReaderhostClient, RequestTimeoutError } from "../src/index.js";
import { Daemon } from "./daemon.js";

let daemon: Daemon;

before(async () => {
  daemon = await Daemon.start();
});

after(async () => {
  await daemon?.stop(); // undefined when it failed to start: its own error is the one to read
});

test("a call unanswered within its timeout fails with RequestTimeoutError; a late answer is dropped", async () => {
  const client = await ReaderhostClient.connect({ path: daemon.socketPath });
  try {
    daemon.pause();
    try {
      await assert.rejects(client.statusGet(undefined, { timeoutMs: 300 }), (error: unknown) => {
        assert.ok(error instanceof RequestTimeoutError, String(error));
        assert.equal(error.timeoutMs, 300);
        assert.equal(error.method, "status.get");
        return true;
      });
    } finally {
      daemon.resume();
    }
    // The late answer to the timed-out call does not answer the next one.
    const hello = await client.sessionHello();
    assert.equal(hello.boot_id, client.banner.boot_id);
    assert.deepEqual(Object.keys(hello).sort(), ["boot_id", "daemon", "mode", "protocol"]);
  } finally {
    client.close();
  }
});

test("a connection the daemon does not greet in time fails with CannotConnectError", async () => {
  daemon.pause();
  try {
    const connecting = ReaderhostClient.connect({ path: daemon.socketPath, connectTimeoutMs: 300 });
    await assert.rejects(connecting, (error: unknown) => {
      assert.ok(error instanceof CannotConnectError, String(error));
      assert.match(error.message, /no banner within 300 ms/);
      return true;
    });
  } finally {
    daemon.resume();
  }
  await assert.rejects(
    ReaderhostClient.connect({ path: `${daemon.folder}/nobody.sock` }),
    (error: unknown) => error instanceof CannotConnectError && /ENOENT/.test(error.message),
  );
});
