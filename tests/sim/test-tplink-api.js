// SPDX-License-Identifier: MIT
// Runs one tplink-smarthome-api call against a device and prints its result
// as JSON on stdout, for tests/sim/test-tplink-api.py. On failure prints
// {"error": MESSAGE} and exits 1.
// Usage: node test-tplink-api.js PACKAGE-DIR HOST CHILD-ID|- OP [ARG...]
//   OP: getInfo | getSysInfo | realtime | daystats YEAR MONTH | power on|off
'use strict';

const [pkg, host, child, op, ...args] = process.argv.slice(2);

async function main() {
  const { Client } = require(pkg);
  const client = new Client({
    logLevel: 'silent',
    defaultSendOptions: { timeout: 5000, transport: 'tcp' },
  });
  const options = { host };
  if (child !== '-') options.childId = child;
  const device = await client.getDevice(options);
  switch (op) {
    case 'getInfo':
      return device.getInfo();
    case 'getSysInfo':
      return device.getSysInfo();
    case 'realtime':
      return device.emeter.getRealtime();
    case 'daystats':
      return device.emeter.getDayStats(Number(args[0]), Number(args[1]));
    case 'power':
      await device.setPowerState(args[0] === 'on');
      return { power: await device.getPowerState() };
    default:
      throw new Error(`unknown operation ${op}`);
  }
}

main().then(
  (r) => {
    process.stdout.write(`${JSON.stringify(r)}\n`);
    process.exit(0);
  },
  (e) => {
    process.stdout.write(`${JSON.stringify({ error: String(e && e.message ? e.message : e) })}\n`);
    process.exit(1);
  },
);
