import { BusyError, ConnectionLostError, ReaderhostClient } from "readerhost-client";

async function sell(orderId: string, amount: number): Promise<void> {
  const client = await ReaderhostClient.connect(); // $READERHOST_SOCKET or /run/readerhost/api.sock
  try {
    await client.eventsSubscribe({ topics: ["payment", "reader"] });
    let payment;
    try {
      payment = await client.paymentStart({ order_id: orderId, amount, currency: "usd" });
    } catch (error) {
      if (error instanceof BusyError) return console.log("the reader is busy: try again in a moment");
      if (error instanceof ConnectionLostError) {
        // Maybe started, maybe not: ask (the same order_id never pays twice).
        return console.log("connection lost; ask paymentGet({ order_id }) once reconnected");
      }
      throw error;
    }
    for await (const event of client.events()) {
      switch (event.type) {
        case "reader.input_options":
          console.log("customer may", event.data.options.join(", "));
          break;
        case "payment.state":
          if (event.data.payment_id !== payment.payment_id) break;
          if (event.data.state === "authorized") {
            await client.paymentCapture({ payment_id: payment.payment_id }); // after dispensing
          } else if (["captured", "declined", "canceled", "failed"].includes(event.data.state)) {
            return console.log("payment", event.data.state);
          }
          break;
        case "client.reconnected": {
          // Events in between are lost: read the payment again.
          const now = await client.paymentGet({ payment_id: payment.payment_id });
          console.log("reconnected; the payment is", now.state);
          break;
        }
      }
    }
  } finally {
    client.close();
  }
}

await sell("A-1003", 1250);
