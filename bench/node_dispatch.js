// Node's own MessageChannel running figure 3 of bench_ports.py: the reference point.
//
//     node bench/node_dispatch.js N BATCH WARMUP
//
// port2.onmessage counts (reading event.data) and finishes at N; port1 posts the ints
// 0..N-1 in batches of BATCH, yielding to the event loop (setImmediate) after each batch, as
// the Python producer does with trio.sleep(0). WARMUP untimed loops run first so V8 has
// compiled the code; then one loop is timed with process.hrtime.bigint() and printed as
// {"seconds": ...} on stdout.
'use strict';

function once(n, batch) {
  return new Promise((resolve) => {
    const { port1, port2 } = new MessageChannel();
    let count = 0;
    let t0 = 0n;
    port2.onmessage = (event) => {
      void event.data;
      count += 1;
      if (count === n) {
        const elapsed = process.hrtime.bigint() - t0;
        port1.close();
        resolve(Number(elapsed) / 1e9);
      }
    };
    const yieldToLoop = () => new Promise((done) => setImmediate(done));
    t0 = process.hrtime.bigint();
    (async () => {
      for (let start = 0; start < n; start += batch) {
        const end = Math.min(start + batch, n);
        for (let i = start; i < end; i++) port1.postMessage(i);
        await yieldToLoop();
      }
    })();
  });
}

async function main() {
  const [n, batch, warmup] = process.argv.slice(2).map(Number);
  if (!(n > 0 && batch > 0 && warmup >= 0)) {
    console.error('usage: node node_dispatch.js N BATCH WARMUP');
    process.exit(2);
  }
  for (let i = 0; i < warmup; i++) await once(n, batch);
  const seconds = await once(n, batch);
  process.stdout.write(JSON.stringify({ seconds }) + '\n');
}

main();
