// SPDX-License-Identifier: MIT
// The peer side of tools/bench-poll: tplink-smarthome-api (what homebridge
// uses) polling the same simulated plugs as kasamond, as an application
// built on it would: per plug, every interval, getSysInfo() then
// emeter.getRealtime(), over a shared (persistent) socket per device.
//
// Usage: node bench-poll-peer.js PACKAGE_DIR INTERVAL_S HOST...
// Prints "ready" once every plug answered, then on SIGUSR2 the number of
// completed reads (sysinfo + meter) so far, one per line.
'use strict';

const [pkg, intervalArg, ...hosts] = process.argv.slice(2);
const { Client } = require(pkg);
const interval = Number(intervalArg) * 1000;
const client = new Client({
  defaultSendOptions: { timeout: 5000, transport: 'tcp', useSharedSocket: true, sharedSocketTimeout: 60000 },
  logLevel: 'silent',
});
let reads = 0;
let errors = 0;

process.on('SIGUSR2', () => process.stdout.write(`${reads} ${errors}\n`));
process.on('SIGTERM', () => process.exit(0));

async function poll(plug) {
  let due = Date.now();
  for (;;) {
    try {
      await plug.getSysInfo();
      await plug.emeter.getRealtime();
      reads++;
    } catch (e) {
      errors++;
    }
    due += interval;
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, due - Date.now())));
  }
}

(async () => {
  const plugs = await Promise.all(hosts.map((host) => client.getDevice({ host, port: 9999 })));
  process.stdout.write('ready\n');
  // Spread the plugs over one interval, as kasamond does.
  plugs.forEach((plug, i) => setTimeout(() => poll(plug), (interval * i) / plugs.length));
})().catch((e) => {
  process.stderr.write(`bench-poll-peer: ${e.stack || e}\n`);
  process.exit(1);
});
