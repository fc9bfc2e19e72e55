// Artillery processor for the fan-out scenario (bench/generator.py). Artillery's ws
// engine discards received frames unless `capture`/`match` is used, and those wait for one
// reply per send: wrong for fan-out. So `attach` listens on the socket itself and records
// each delivery's latency (sender's stamp to receipt) in a custom histogram.
const { performance } = require('perf_hooks');

const PAD = 'x'.repeat(Number(process.env.BENCH_TEXT || 128));
let users = 0;

const now = () => performance.timeOrigin + performance.now();

function attach(context, events, next) {
  users += 1;
  context.vars.uid = String(users);
  context.vars.seq = 0;
  context.ws.on('message', (data) => {
    const msg = JSON.parse(data);
    events.emit('histogram', 'fanout.latency', now() - msg.sentAt);
  });
  next();
}

function stamp(context, events, next) {
  context.vars.seq += 1;
  context.vars.payload = JSON.stringify({
    id: `${context.vars.uid}-${context.vars.seq}`,
    room: 'general',
    senderId: context.vars.uid,
    text: PAD,
    sentAt: now(),
  });
  next();
}

module.exports = { attach, stamp };
