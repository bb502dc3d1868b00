// Payments through the client against a real readerhostd: to capture and a refund, with the events
// seen through the iterator; a decline, collect again and cancel; the daemon's refusals as typed errors.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import {
  ERROR_CLASSES,
  ERROR_CODES,
  IdempotencyConflictError,
  InvalidParamsError,
  InvalidStateError,
  METHOD_NAMES,
  NotFoundError,
  PROTOCOL_VERSION,
  ReaderhostClient,
  ReaderhostError,
  type ClientEvent,
} from "../src/index.js";
import { Daemon } from "./daemon.js";
import { nextEvent, paymentState } from "./wait.js";

let daemon: Daemon;

before(async () => {
  daemon = await Daemon.start();
});

after(async () => {
  await daemon?.stop(); // undefined when it failed to start: its own error is the one to read
});

test("a payment to capture and a refund, their progress seen through the events iterator", async () => {
  const client = await ReaderhostClient.connect({ path: daemon.socketPath });
  try {
    assert.equal(client.banner.protocol.major, PROTOCOL_VERSION.major);
    assert.equal(client.banner.mode, "emulator");
    const { snapshot } = await client.eventsSubscribe({ topics: ["payment", "reader"] });
    assert.deepEqual(snapshot.payments, []);
    const payment = await client.paymentStart({ order_id: "TS-1", amount: 1250, currency: "usd" });
    assert.equal(payment.order_id, "TS-1");
    assert.equal(payment.state, "creating");

    const states: string[] = [];
    const kinds = new Set<string>();
    for await (const event of client.events()) {
      kinds.add(event.type);
      if (event.type === "refund.updated" && event.data.state === "succeeded") {
        assert.equal(event.data.refund_id, "TS-1-R1");
        assert.equal(event.data.payment.refunded_amount, 500);
        break;
      }
      if (event.type !== "payment.state" || event.data.payment_id !== payment.payment_id) continue;
      states.push(event.data.state);
      if (event.data.state === "collecting" && !states.includes("presented")) {
        states.push("presented");
        assert.deepEqual(await client.readerPresent({ card: "visa" }), {});
      } else if (event.data.state === "authorized") {
        assert.equal(event.data.card?.brand, "visa");
        const capturing = await client.paymentCapture({ payment_id: payment.payment_id });
        assert.ok(["capturing", "captured"].includes(capturing.state));
      } else if (event.data.state === "captured") {
        assert.equal(event.data.captured_amount, 1250);
        const refund = await client.paymentRefund({
          payment_id: payment.payment_id,
          refund_id: "TS-1-R1",
          amount: 500,
        });
        assert.equal(refund.state, "pending");
      }
    }
    assert.deepEqual(
      states.filter((state) => state !== "presented"),
      ["creating", "collecting", "processing", "authorized", "capturing", "captured"],
    );
    assert.ok(kinds.has("reader.input_options"), `no prompt among ${[...kinds].join(", ")}`);
    const read = await client.paymentGet({ order_id: "TS-1" });
    assert.equal(read.state, "captured");
    assert.equal(read.payment_id, payment.payment_id);
  } finally {
    client.close();
  }
});

test("a declined card, collect again, then cancel", async () => {
  const client = await ReaderhostClient.connect({ path: daemon.socketPath });
  try {
    const events = client.events();
    const seen: ClientEvent[] = [];
    await client.eventsSubscribe({ topics: ["payment"] });
    const payment = await client.paymentStart({ order_id: "TS-2", amount: 900, currency: "usd" });
    await nextEvent(events, paymentState(payment.payment_id, "collecting"), seen);
    await client.readerPresent({ card: "charge_declined_insufficient_funds" });
    const declined = await nextEvent(events, paymentState(payment.payment_id, "declined"), seen);
    assert.equal(declined.data.decline?.decline_code, "insufficient_funds");

    const again = await client.paymentCollectAgain({ payment_id: payment.payment_id });
    assert.equal(again.payment_id, payment.payment_id);
    await nextEvent(events, paymentState(payment.payment_id, "collecting"), seen);
    await client.readerPresent({ card: "visa" });
    const authorized = await nextEvent(events, paymentState(payment.payment_id, "authorized"), seen);
    assert.equal(authorized.data.attempts, 2);

    const canceled = await client.paymentCancel({ payment_id: payment.payment_id, reason: "requested_by_customer" });
    assert.equal(canceled.state, "canceled");
    await nextEvent(events, paymentState(payment.payment_id, "canceled"), seen);
  } finally {
    client.close();
  }
});

test("the daemon's refusals are typed errors, by reason", async () => {
  const client = await ReaderhostClient.connect({ path: daemon.socketPath });
  try {
    const missing = await client.paymentGet({ order_id: "TS-NOBODY" }).then(
      () => assert.fail("an unknown order was found"),
      (error: unknown) => error,
    );
    assert.ok(missing instanceof NotFoundError);
    assert.ok(missing instanceof ReaderhostError);
    assert.equal(missing.reason, "NOT_FOUND");
    assert.equal(missing.code, ERROR_CODES.NOT_FOUND);
    assert.equal(missing.name, "NotFoundError");

    // A parameter the daemon does not know: refused, naming it.
    await assert.rejects(
      client.call("payment.get", { order_id: "TS-1", colour: "red" } as never),
      (error: unknown) => error instanceof InvalidParamsError && error.field === "colour",
    );

    // The same order with another amount while its payment is live.
    const first = await client.paymentStart({ order_id: "TS-3", amount: 500, currency: "usd" });
    await assert.rejects(
      client.paymentStart({ order_id: "TS-3", amount: 501, currency: "usd" }),
      IdempotencyConflictError,
    );
    // Asking again the same is no second payment.
    const again = await client.paymentStart({ order_id: "TS-3", amount: 500, currency: "usd" });
    assert.equal(again.payment_id, first.payment_id);
    await client.paymentCancel({ payment_id: first.payment_id });
    await assert.rejects(client.paymentCapture({ payment_id: first.payment_id }), (error: unknown) => {
      assert.ok(error instanceof InvalidStateError);
      assert.equal(error.reason, "INVALID_STATE");
      assert.match(error.message, /canceled/);
      return true;
    });
    // Every reason the protocol defines has its class.
    for (const [reason, ErrorClass] of Object.entries(ERROR_CLASSES)) {
      assert.equal(new ErrorClass(1, "m", { reason }).reason, reason);
    }
  } finally {
    client.close();
  }
});

test("the client has a method for every method the daemon serves, named by one rule", async () => {
  const client = await ReaderhostClient.connect({ path: daemon.socketPath });
  try {
    for (const name of METHOD_NAMES) {
      const camel = name.replace(/[._]([a-z])/g, (_, letter: string) => letter.toUpperCase());
      assert.equal(typeof (client as unknown as Record<string, unknown>)[camel], "function", name);
    }
    const status = await client.statusGet();
    assert.equal(status.boot_id, client.banner.boot_id);
    assert.equal(status.protocol.minor, client.banner.protocol.minor);
  } finally {
    client.close();
  }
});

test("events beyond maxQueuedEvents are dropped, oldest first, and the reader is told how many", async () => {
  const watcher = await ReaderhostClient.connect({ path: daemon.socketPath });
  const client = await ReaderhostClient.connect({ path: daemon.socketPath, maxQueuedEvents: 2 });
  try {
    await watcher.eventsSubscribe({ topics: ["payment"] });
    await client.eventsSubscribe({ topics: ["payment"] });
    const watched = watcher.events();
    const payment = await client.paymentStart({ order_id: "TS-4", amount: 300, currency: "usd" });
    await nextEvent(watched, paymentState(payment.payment_id, "collecting"));
    await client.readerPresent({ card: "visa" });
    await nextEvent(watched, paymentState(payment.payment_id, "authorized"));
    await client.statusGet(); // answered after the events committed before it, on this connection
    const events = client.events();
    const first = await events.next();
    assert.equal(first.value?.type, "client.events_missed");
    assert.ok(first.value?.type === "client.events_missed" && first.value.missed >= 2, JSON.stringify(first.value));
    const kept = [(await events.next()).value, (await events.next()).value];
    assert.deepEqual(
      kept.map((event) => event?.type === "payment.state" && event.data.state),
      ["processing", "authorized"],
    );
    await client.paymentCancel({ payment_id: payment.payment_id });
  } finally {
    client.close();
    watcher.close();
  }
});
