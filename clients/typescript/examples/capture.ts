import { ReaderhostClient } from "readerhost-client";

const client = await ReaderhostClient.connect(); // $READERHOST_SOCKET, else /run/readerhost/api.sock
await client.eventsSubscribe({ topics: ["payment", "reader"] });
const payment = await client.paymentStart({ order_id: "A-1005", amount: 1250, currency: "usd" });
for await (const event of client.events()) {
  if (event.type === "payment.state" && event.data.payment_id === payment.payment_id) {
    if (event.data.state === "authorized") await client.paymentCapture({ payment_id: payment.payment_id });
    if (event.data.state === "captured") break;
  }
}
client.close();
