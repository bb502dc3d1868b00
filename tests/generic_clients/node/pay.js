// jayson's stream (TCP) client, unmodified, against readerhostd's sockets. Run by
// tests/generic_clients/test_jayson.py: `node pay.js greet SOCKET` or `node pay.js pay SOCKET ORDER_ID`.
// Prints one JSON line per step, for the test to check.
'use strict';

const jayson = require('jayson/promise');

const [mode, socketPath, orderId] = process.argv.slice(2);
// jayson opens one connection per request over net.connect({path}), newline-delimited.
const client = jayson.client.tcp({ path: socketPath });

function say(step, value) {
  process.stdout.write(JSON.stringify({ step, value }) + '\n');
}

async function call(method, params) {
  const response = await client.request(method, params);
  if (response.error) {
    const error = new Error(`${method}: ${response.error.message}`);
    error.rpc = response.error;
    throw error;
  }
  return response.result;
}

// The payment's state, asked again until it is one of `states` (jayson's client gets no events:
// its connection closes after each answer, so a POS using it polls).
async function until(paymentId, states, seconds = 20) {
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    const payment = await call('payment.get', { payment_id: paymentId });
    if (states.includes(payment.state)) {
      return payment;
    }
    if (Date.now() > deadline) {
      throw new Error(`payment ${paymentId} still ${payment.state}, not ${states.join(' or ')}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function readerCollecting(seconds = 20) {
  const deadline = Date.now() + seconds * 1000;
  while ((await call('status.get', {})).reader.state !== 'collecting') {
    if (Date.now() > deadline) {
      throw new Error('the reader never started collecting');
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function greet() {
  // The first answer jayson reads on a connection, whatever it is.
  say('first_answer', await client.request('status.get', {}));
}

async function pay() {
  say('hello', await call('session.hello', {}));
  const started = await call('payment.start', { order_id: orderId, amount: 1250, currency: 'usd' });
  say('started', started);
  await readerCollecting();
  say('presented', await call('reader.present', { card: 'visa' }));
  say('authorized', await until(started.payment_id, ['authorized']));
  say('capture', await call('payment.capture', { payment_id: started.payment_id }));
  say('captured', await until(started.payment_id, ['captured']));
  try {
    await call('payment.get', { payment_id: 'pay_unknown' });
    say('unknown', null);
  } catch (error) {
    say('unknown', error.rpc || { message: error.message });
  }
}

(mode === 'greet' ? greet() : pay()).catch((error) => {
  process.stderr.write(`${error.stack || error}\n`);
  process.exit(1);
});
