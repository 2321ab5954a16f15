// SPDX-License-Identifier: MIT
// Runs one tp-link-tapo-connect call against a Tapo device over its local
// API (loginDeviceByIp: KLAP handshake with the owner's credentials, no
// cloud; AES securePassthrough when the device has no KLAP) and prints the result as JSON on stdout, for
// tests/sim/test-tapo-connect.py. On failure prints {"error": MESSAGE} and
// exits 1.
// Usage: node test-tapo-connect.js PACKAGE-DIR HOST USER PASSWORD OP
//   OP: info | energy | on | off
'use strict';

const [pkg, host, user, password, op] = process.argv.slice(2);

async function main() {
  const { loginDeviceByIp } = require(pkg);
  const device = await loginDeviceByIp(user, password, host);
  switch (op) {
    case 'info':
      return device.getDeviceInfo();
    case 'energy':
      return device.getEnergyUsage();
    case 'on':
      await device.turnOn();
      return { done: true };
    case 'off':
      await device.turnOff();
      return { done: true };
    default:
      throw new Error(`unknown op ${op}`);
  }
}

main().then(
  (r) => console.log(JSON.stringify(r ?? null)),
  (e) => {
    console.log(JSON.stringify({ error: String(e && e.message ? e.message : e) }));
    process.exit(1);
  });
