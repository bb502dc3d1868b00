// Reconnecting against a real readerhostd killed with SIGKILL and started again: the request in
// flight fails (never sent again), calls meanwhile fail at once, the subscription is renewed.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import {
  ConnectionLostError,
  NotConnectedError,
  NotFoundError,
  ReaderhostClient,
  type ClientEvent,
} from "../src/index.js";
import { Daemon } from "./daemon.js";
import { nextEvent, ofType, paymentState } from "./wait.js";

let daemon: Daemon;

before(async () => {
  daemon = await Daemon.start();
});

after(async () => {
  await daemon?.stop(); // undefined when it failed to start: its own error is the one to read
});

test("after a SIGKILL and a new start the client reconnects, subscribed again, and sends nothing again", async () => {
  const client = await ReaderhostClient.connect({
    path: daemon.socketPath,
    reconnect: { initialDelayMs: 50, maxDelayMs: 500 },
  });
  try {
    const events = client.events();
    const seen: ClientEvent[] = [];
    const bootBefore = client.banner.boot_id;
    await client.eventsSubscribe({ topics: ["payment"] });
    const first = await client.paymentStart({ order_id: "TS-R", amount: 700, currency: "usd" });
    await nextEvent(events, paymentState(first.payment_id, "collecting"), seen);

    // A payment.start in flight when the daemon dies: stopped, the daemon leaves it unread; then killed.
    daemon.pause();
    const inFlight = client
      .paymentStart({ order_id: "TS-R2", amount: 300, currency: "usd" })
      .then(
        () => assert.fail("a stopped daemon answered"),
        (error: unknown) => error,
      );
    await daemon.kill();
    const lost = await inFlight;
    assert.ok(lost instanceof ConnectionLostError, String(lost));
    assert.equal(lost.method, "payment.start");
    assert.match(lost.message, /may or may not have been carried out/);
    await nextEvent(events, ofType("client.disconnected"), seen);
    assert.equal(client.connected, false);
    await assert.rejects(client.paymentGet({ order_id: "TS-R" }), NotConnectedError);

    await daemon.startAgain();
    const back = await nextEvent(events, ofType("client.reconnected"), seen, 30_000);
    assert.equal(back.restarted, true);
    assert.notEqual(back.banner.boot_id, bootBefore);
    assert.equal(client.banner.boot_id, back.banner.boot_id);
    assert.ok(back.snapshot, "the subscription was not renewed");
    await client.waitUntilConnected(1000);

    // The lost payment.start was not sent again: the order is unknown to the daemon.
    await assert.rejects(client.paymentGet({ order_id: "TS-R2" }), NotFoundError);
    // The payment that waited for a customer was canceled by the restart, and the client did not start it again.
    const after = await client.paymentGet({ order_id: "TS-R" });
    assert.equal(after.payment_id, first.payment_id);
    assert.equal(after.state, "canceled");
    const attempts = (await client.paymentList({ order_id: "TS-R" })).payments;
    assert.deepEqual(
      attempts.map((attempt) => attempt.payment_id),
      [first.payment_id],
    );

    // The renewed subscription brings the next attempt's events through the same iterator.
    const second = await client.paymentStart({ order_id: "TS-R", amount: 700, currency: "usd" });
    assert.equal(second.order_attempt, 2);
    await nextEvent(events, paymentState(second.payment_id, "collecting"), seen);
    await client.paymentCancel({ payment_id: second.payment_id });
  } finally {
    client.close();
  }
});
