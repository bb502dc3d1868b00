#!/usr/bin/env bash
# Take one payment over the readerhost socket with socat and jq: start, present a card (simulated
# reader), capture when authorised. Prints each event as [seq, type, detail] and every answer.
#   READERHOST_SOCKET=/run/readerhost/api.sock ./pay-with-socat.sh ORDER-ID AMOUNT
set -euo pipefail
# Where readerhostctl looks (readerhost.client.paths): $READERHOST_SOCKET, else the system service's socket
# when it exists, else a daemon run by this user, else ./readerhost-api.sock.
if [[ -n ${READERHOST_SOCKET:-} ]]; then
  SOCKET=$READERHOST_SOCKET
elif [[ -e /run/readerhost/api.sock ]]; then
  SOCKET=/run/readerhost/api.sock
elif [[ ${XDG_RUNTIME_DIR:-} == /* ]]; then
  SOCKET=${XDG_RUNTIME_DIR%%:*}/readerhost/api.sock
else
  SOCKET=./readerhost-api.sock
fi
ORDER=${1:-A-1002}
AMOUNT=${2:-1250}

coproc RH { socat - UNIX-CONNECT:"$SOCKET"; }   # one connection for the whole payment
send() { printf '%s\n' "$1" >&"${RH[1]}"; }

send '{"jsonrpc":"2.0","id":1,"method":"events.subscribe","params":{"topics":["payment","reader"]}}'
send "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"payment.start\",\"params\":{\"order_id\":\"$ORDER\",\"amount\":$AMOUNT,\"currency\":\"usd\"}}"
while read -r line <&"${RH[0]}"; do
  jq -c 'if .method == "event"
         then [.params.seq, .params.type, (.params.data.state // .params.data.options // .params.data.text)]
         else . end' <<<"$line"
  case $(jq -r 'select(.method == "event") | .params.type + ":" + (.params.data.state // "")' <<<"$line") in
    reader.input_options:)
      send '{"jsonrpc":"2.0","id":3,"method":"reader.present","params":{"card":"visa"}}' ;;
    payment.state:authorized)
      id=$(jq -r .params.data.payment_id <<<"$line")
      send "{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"payment.capture\",\"params\":{\"payment_id\":\"$id\"}}" ;;
    payment.state:captured) exit 0 ;;
    payment.state:declined | payment.state:canceled | payment.state:failed) exit 1 ;;
  esac
done
