// SPDX-License-Identifier: MIT
//
// The model and the bus client against kasamond and kasa-sim plugs on a
// private bus (run by test-model.py, which answers the "@@" requests).
// The client is the extension's own code, loaded from the source tree.
import GLib from 'gi://GLib';

import * as T from './harness.js';

const src = `file://${GLib.getenv('KASA_SOURCE_ROOT')}/shell-ext/src`;
const {DeviceTree, DEVICE_IFACE, METER_IFACE} = await import(`${src}/model.js`);
const {Client, MANAGER_PATH, MANAGER_IFACE} = await import(`${src}/client.js`);
const Format = await import(`${src}/format.js`);

const conn = T.connect(GLib.getenv('KASA_BUS_ADDRESS'));
const dirs = [`${GLib.getenv('KASA_SOURCE_ROOT')}/dbus`];
const env = T.request({cmd: 'devices'});
const ids = env.ids; // plug, metered plug, strip, unmetered plug (kasatest ids)
const path = id => `${MANAGER_PATH}/device/${id}`;
const [hs110, kp115, hs300, hs100] = ids.slice(0, 4).map(path);
const outlets = env.outlets.map(path);
const LOADS = [60, 15, 100, 0, 250, 5];

const model = new DeviceTree();
let structural = 0, changes = 0;
model.connect('changed', (m, s) => {
    changes++;
    structural += s ? 1 : 0;
});
const client = new Client({connection: conn, model, dirs});

T.ok(await T.waitFor(() => model.available), 'the client sees kasamond on the bus');
const count = T.getProp(conn, MANAGER_PATH, MANAGER_IFACE, 'DeviceCount');
T.ok(await T.waitFor(() => model.size === count && model.get(hs300)?.metered), `the model has all ${count} devices`,
    `${model.size} in the model`);
T.ok(structural > 0, 'their arrival is a structural change');

// The tree.
const roots = model.roots();
const strip = roots.find(r => r.device.path === hs300);
T.eq(strip?.outlets.map(o => o.path), outlets, 'the strip lists its six outlets in outlet order');
T.eq(roots.map(r => r.device.path).sort(), [hs110, kp115, hs300, hs100].sort(), 'plugs and strips are the roots');
T.ok(roots.filter(r => r.device.path !== hs300).every(r => r.outlets.length === 0), 'plugs have no outlets');
T.eq(roots.map(r => r.device.alias), roots.map(r => r.device.alias).sort((a, b) => a.localeCompare(b)),
    'roots are sorted by name');
for (const p of [hs110, hs100, outlets[3]]) {
    const dev = model.get(p);
    T.eq([dev.alias, dev.on, dev.online, dev.metered],
        [T.getProp(conn, p, DEVICE_IFACE, 'Alias'), T.getProp(conn, p, DEVICE_IFACE, 'On'),
            T.getProp(conn, p, DEVICE_IFACE, 'Online'), p !== hs100],
        `${p.split('/').pop()}: alias, on, online and metered as on the bus`);
}

// Totals follow the loads through PropertiesChanged alone.
T.request({cmd: 'sim', req: {cmd: 'set', device: 0, load_w: 40}});
T.request({cmd: 'sim', req: {cmd: 'set', device: 1, load_w: 7}});
LOADS.forEach((w, k) => T.request({cmd: 'sim', req: {cmd: 'set', device: 2, outlet: k, load_w: w}}));
const want = 40 + 7 + LOADS.reduce((a, b) => a + b, 0);
const close = (a, b) => Math.abs(a - b) < 0.01;
T.ok(await T.waitFor(() => close(model.view().totalPower, want), 30), `the total follows the loads to ${want} W`,
    `model total ${model.view().totalPower}`);
T.ok(await T.waitFor(() => close(model.manager.totalPower, want), 30) &&
    close(T.getProp(conn, MANAGER_PATH, MANAGER_IFACE, 'TotalPower'), model.view().totalPower),
'the model\'s total is kasamond\'s TotalPower (the strip is not counted twice)');
T.ok(close(model.get(hs300).power, LOADS.reduce((a, b) => a + b, 0)), 'the strip\'s power is its outlets\' sum');
T.eq(Format.formatPower(model.view().totalPower, 'auto', 'en-US'), `${want} W`, 'the total reads in watts');
T.eq(Format.formatPower(model.view().totalPower, 'kilowatts', 'en-US'), `${(want / 1000).toFixed(2)} kW`,
    'and in kilowatts when asked');

let v = model.view(new Set([ids[2]]));
T.ok(close(v.totalPower, 47) && v.rows.length === 3, 'hiding the strip hides its outlets and their power',
    JSON.stringify({total: v.totalPower, rows: v.rows.length}));
v = model.view(new Set([env.outlets[4]]));
T.ok(close(v.totalPower, want - 250) && v.rows.find(r => r.device.path === hs300).outlets.length === 5,
    'hiding one outlet takes only its power away');
v = model.view();
const energy = [hs110, kp115, ...outlets].reduce((s, p) => s + model.get(p).energyToday, 0);
T.ok(close(v.energyToday, energy), 'today\'s energy is the plugs\' and outlets\' sum', `${v.energyToday} vs ${energy}`);
const currency = T.busCall(conn, MANAGER_PATH, 'org.freedesktop.DBus.Properties', 'GetAll',
    new GLib.Variant('(s)', [MANAGER_IFACE]))[0].Currency ?? '';
T.ok(currency === '' ? v.costToday === null && v.costMonth === null && v.currency === null : v.currency === currency,
    'without a tariff (or a daemon without costs) there is no cost', JSON.stringify(v));
T.eq(Format.summaryLines(v, true, 'en-US').length, v.costMonth === null ? 1 : 2, 'so the summary is today\'s energy');

// Switching.
let r = await T.settle(client.setOn(hs110, false));
T.ok(r.ok, 'setOn(false) succeeds', r.error);
T.eq(T.request({cmd: 'truth', device: 0}).outlets[0].relay, false, 'and switches the simulated plug off');
T.ok(await T.waitFor(() => model.get(hs110).on === false), 'PropertiesChanged brings On=false into the model');
T.ok(await T.waitFor(() => close(model.get(hs110).power, 0), 30), 'and its power drops to 0 W');
r = await T.settle(client.setOn(outlets[2], false));
T.ok(r.ok && T.request({cmd: 'truth', device: 2}).outlets.map(o => o.relay).join() ===
    'true,true,false,true,true,true', 'setOn of an outlet switches just that outlet');
T.ok(await T.waitFor(() => model.get(outlets[2]).on === false && model.get(hs300).on === true),
    'the outlet is off in the model, the strip still on');
await T.settle(client.setOn(outlets[2], true));
await T.settle(client.setOn(hs110, true));
T.request({cmd: 'sim', req: {cmd: 'fault', device: 3, hang: true}});
r = await T.settle(client.setOn(hs100, false));
T.ok(!r.ok && /did not answer/.test(r.error?.message) && !/GDBus/.test(r.error?.message),
    'a failed switch rejects with the daemon\'s own message', r.error?.message);
T.request({cmd: 'sim', req: {cmd: 'clear', device: 3}});
T.ok(await T.waitFor(() => model.get(hs100).online, 30), 'the hung plug is back online in the model');

// Devices going and coming: InterfacesRemoved and InterfacesAdded.
structural = 0;
T.busCall(conn, MANAGER_PATH, MANAGER_IFACE, 'RemoveDevice', new GLib.Variant('(o)', [hs300]));
T.ok(await T.waitFor(() => !model.get(hs300) && outlets.every(p => !model.get(p))),
    'removing the strip takes it and its outlets out of the model');
T.ok(structural > 0, 'as a structural change');
T.busCall(conn, MANAGER_PATH, MANAGER_IFACE, 'AddDevice', new GLib.Variant('(s)', [env.addresses[2]]));
T.ok(await T.waitFor(() => model.get(hs300)?.metered && outlets.every(p => model.get(p)?.online), 30),
    'adding it again brings the strip and its outlets back');
T.ok(await T.waitFor(() => close(model.view().totalPower, want), 30), 'with their power in the total');

// kasamond stops and comes back.
T.request({cmd: 'stop-daemon'});
T.ok(await T.waitFor(() => !model.available && model.size === 0), 'kasamond gone: the model is empty and unavailable');
T.eq(client.liveObjects, 0, 'and no proxy is left');
T.request({cmd: 'start-daemon'});
T.ok(await T.waitFor(() => model.available && model.size === count, 30), 'kasamond back: every device is back');
T.ok(await T.waitFor(() => close(model.view().totalPower, want), 30), 'and the total too');
T.ok(client.liveObjects >= count, 'one proxy per device interface', client.liveObjects);

changes = 0;
await T.iterate(3);
T.ok(changes > 0, 'polls arrive as PropertiesChanged', changes);

client.destroy();
T.ok(!model.available && model.size === 0 && client.liveObjects === 0, 'destroy() empties the model');
changes = 0;
await T.iterate(2);
T.eq(changes, 0, 'and nothing reaches the model after destroy()');

const status = T.done();
imports.system.exit(status);
